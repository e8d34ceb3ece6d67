"""A health-check page (thyroid function, lipids, HbA1c) read by the real OCR through the upload chain.

The page is drawn with ``screening.synth`` for the booking's own patient, scanned, uploaded and read by
RapidOCR; the stored extraction must carry TSH and HbA1c as printed (TSH matters before iodinated contrast)
and keep the row the catalogue does not know (甲状腺球蛋白 Tg) under ``unnamed``, as read. One page, so the
file stays within CI's time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from medcard.models import User
from screening.models import ScreeningCase, ScreeningRun
from tests.screening.test_cases import RISK, hold, screened_session
from tests.screening.test_real_ocr_decisions import report, send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks", "private_media")]
Capture = Callable[..., Any]


def test_a_scanned_thyroid_lipid_and_hba1c_page_gives_tsh_and_hba1c_and_keeps_the_unknown_row(
    patient: User, django_capture_on_commit_callbacks: Capture
) -> None:
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        booking = hold(patient, screened_session(), RISK)
    spec = report(51, "thyroid_lipid_hba1c", font="noto-sans-sc", tsh=5.82, hba1c=7.2, x_tg=12.3)
    assert {"tsh", "hba1c", "x_tg"} <= set(spec.codes)
    send(patient, booking, capture, (spec, "scan"))
    case = ScreeningCase.objects.get(booking=booking)
    run = ScreeningRun.objects.get(case=case, step="extract", status="ok")
    assert run.ocr_engine.get("name") == "rapidocr"
    extraction = run.outputs["extraction"]
    values = {a["code"]: a["value"] for a in extraction["analytes"]}
    assert (values["tsh"], values["hba1c"]) == (5.82, 7.2)
    tg = spec.row("x_tg")
    kept = [u for u in extraction["unnamed"] if "甲状腺球蛋白" in u["label"]]
    assert kept == [{"label": kept[0]["label"], "value": tg.value_text, "unit": tg.unit_text}]
    # No rule reads an unnamed row: none of them is among the fields the decision rests on.
    used = {f["name"] for f in case.critical_fields}
    assert not used & {u["label"] for u in extraction["unnamed"]}
