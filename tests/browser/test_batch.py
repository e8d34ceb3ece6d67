"""A pharmacist runs a PTA simulation in Chromium: the form, the job page, the CSV, a refused CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.test import Client
from playwright.sync_api import Browser, BrowserContext

from dosing.batch.models import BatchJob
from hospital.celery import app as celery_app
from medcard import roles
from medcard.models import User
from tests import factories

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
TABLET = {"width": 1024, "height": 900}


def _signed_in(browser: Browser, user: User, base_url: str) -> BrowserContext:
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport=TABLET, locale="zh-CN", accept_downloads=True)  # type: ignore[arg-type]
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url}])
    return context


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pharmacist_runs_a_pta_simulation_and_downloads_the_csv(  # type: ignore[no-untyped-def]
    live_server, browser: Browser, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # the chunks run inside the request
    pharmacist = factories.staff(role=roles.PHARMACIST, username="pharm-browser")
    context = _signed_in(browser, pharmacist, live_server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{live_server.url}/dosing/batch/")
    page.get_by_role("link", name="新建目标达成模拟").click()
    page.get_by_label("标题").fill("神外 1 g q12h")
    page.get_by_label("模型").select_option("wei_2022")
    page.get_by_label("虚拟患者", exact=True).select_option("neurosurgical")
    page.get_by_label("虚拟患者人数").fill("20000")
    page.get_by_label("方案 2：剂量（mg）").fill("1500")
    page.get_by_label("方案 2：给药间隔（小时）").fill("12")
    page.get_by_label("方案 2：输注时间（小时）").fill("1.5")
    print(
        "BTN",
        page.get_by_role("button", name="开始").count(),
        page.get_by_role("button", name="开始").evaluate(
            "b => [b.type, !!b.form, b.form && b.form.method, b.disabled]"
        ),
    )
    # (a full-page screenshot just before this click makes Chromium drop it: screenshots come after)
    with page.expect_navigation():
        page.get_by_role("button", name="开始").click()
    assert page.url.startswith(f"{live_server.url}/dosing/batch/") and page.url.endswith("/")
    job = BatchJob.objects.get()
    assert job.status == "done"
    page.reload()  # the page a pharmacist comes back to
    table = page.get_by_test_id("batch-results")
    assert table.locator("tbody tr").count() == 2
    pta = job.result["regimens"][1]["pta"]
    assert f"{round(pta * 100)}%" in table.locator("tbody tr").nth(1).inner_text()
    page.screenshot(path=str(SHOTS / "batch-job.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_test_id("download-csv").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [float(r["dose_mg"]) for r in rows] == [1000.0, 1500.0] and float(rows[1]["pta"]) == pta

    # a CSV of covariates with a bad weight: refused on the field with its row and column, nothing stored
    bad = tmp_path / "bad.csv"
    bad.write_text("age_years,sex,weight_kg,scr_umol_l\n52,male,70,60\n48,female,七十,55\n", encoding="utf-8")
    page.goto(f"{live_server.url}/dosing/batch/new/pta/")
    page.get_by_label("虚拟患者", exact=True).select_option("csv")
    page.get_by_label("协变量 CSV").set_input_files(str(bad))
    page.get_by_role("button", name="开始").click()
    error = page.get_by_test_id("error-covariates_file")
    assert "第 3 行" in error.inner_text() and "weight_kg" in error.inner_text()
    page.screenshot(path=str(SHOTS / "batch-bad-csv.png"), full_page=True)
    assert BatchJob.objects.count() == 1
    assert errors == []
    context.close()
