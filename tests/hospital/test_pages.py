from __future__ import annotations

import json
import logging
import logging.config

import polib
import pytest
from django.conf import settings
from django.test import Client

from reservations.services import demo_departments_seed


@pytest.mark.django_db
def test_home_page_is_in_simplified_chinese_by_default(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="zh-hans"' in html
    assert "门诊服务" in html
    assert 'name="viewport"' in html


@pytest.mark.django_db
def test_language_switch_remembers_english(client: Client) -> None:
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    html = client.get("/").content.decode()
    assert '<html lang="en"' in html
    assert "Outpatient services" in html


@pytest.mark.django_db
def test_large_text_mode_is_remembered_in_a_cookie(client: Client) -> None:
    response = client.post("/preferences/text-size", {"size": "large", "next": "/booking/"})
    assert response.status_code == 302
    assert response["Location"] == "/booking/"
    assert response.cookies["text_size"]["max-age"] == 365 * 24 * 3600
    assert 'class="text-large"' in client.get("/").content.decode()
    client.post("/preferences/text-size", {"size": "normal"})
    assert 'class="text-large"' not in client.get("/").content.decode()


@pytest.mark.django_db
def test_unknown_text_size_is_refused_and_changes_nothing(client: Client) -> None:
    response = client.post("/preferences/text-size", {"size": "huge"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "Unknown text size" in response.content.decode()
    assert "text_size" not in response.cookies


@pytest.mark.django_db
def test_text_size_switch_does_not_redirect_to_another_site(client: Client) -> None:
    response = client.post("/preferences/text-size", {"size": "large", "next": "https://evil.example/"})
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_departments_page_lists_demo_departments_in_the_chosen_language(client: Client) -> None:
    demo_departments_seed()
    assert "神经外科" in client.get("/booking/").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "Neurosurgery" in client.get("/booking/").content.decode()


@pytest.mark.django_db
def test_unknown_page_gets_the_site_404_page(client: Client) -> None:
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "页面不存在" in response.content.decode()


def test_every_chinese_translation_is_present_and_compiled() -> None:
    po = polib.pofile(str(settings.BASE_DIR / "locale/zh_Hans/LC_MESSAGES/django.po"))
    mo = polib.mofile(str(settings.BASE_DIR / "locale/zh_Hans/LC_MESSAGES/django.mo"))
    assert po.untranslated_entries() == []
    assert po.fuzzy_entries() == []
    compiled = {entry.msgid: entry.msgstr for entry in mo}
    assert {e.msgid: e.msgstr for e in po.translated_entries()} == compiled, "run `make messages`"


def test_logs_are_one_json_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    logging.config.dictConfig(settings.LOGGING)
    logging.getLogger("hospital.test").warning("挂号 %s", "ok", extra={"patient_id": 7})
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    record = json.loads(lines[-1])
    assert record["message"] == "挂号 ok"
    assert record["level"] == "WARNING"
    assert record["logger"] == "hospital.test"
    assert record["patient_id"] == 7
    assert record["time"].endswith("+00:00")


@pytest.mark.django_db
def test_staff_are_greeted_by_display_name_and_patients_by_their_masked_mobile(client: Client) -> None:
    from medcard import roles
    from medcard.services import staff_create
    from tests.factories import patient_account

    desk = staff_create(
        username="desk-wang", password="Desk-Passw0rd-2026", display_name="王芳", role=roles.FRONT_DESK
    )
    client.force_login(desk)
    page = client.get("/").content.decode()
    assert '<span class="who">王芳</span>' in page and "desk-wang" not in page
    patient = patient_account(mobile="13912345678")
    client.force_login(patient)
    assert '<span class="who">139****5678</span>' in client.get("/").content.decode()
