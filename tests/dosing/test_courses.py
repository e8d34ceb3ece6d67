"""Courses: entry, re-fit by level, versions, signing, bad input, and who may see a course."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from dosing import selectors, services
from dosing.calculation import ChosenRegimen
from dosing.models import CourseEvent, CourseFit, DoseEntry, LevelEntry, SignedRegimen
from medcard.models import AuditEvent, Card, User
from tests import factories
from tests.dosing.conftest import START, details

pytestmark = pytest.mark.django_db


def test_doses_with_a_repeating_line_are_fitted_a_priori(course) -> None:  # type: ignore[no-untyped-def]
    fit = selectors.course_latest_fit(course=course)
    assert fit is not None and fit.levels_count == 0
    assert fit.result["models"][0]["status"] == "a_priori"
    doses = fit.case["doses"]
    assert doses[1]["repeat"] == {"count": 2, "interval_h": 12.0}
    assert fit.engine_version.startswith("engine-") and "goti_2018" in fit.model_versions


def test_each_new_level_refits_and_shows_how_it_moved_the_estimate(course, pharmacist: User) -> None:  # type: ignore[no-untyped-def]
    services.level_add(
        course=course, actor=pharmacist, drawn_at=START + timedelta(hours=35.5), conc_mg_per_l=Decimal("14.2")
    )
    first = selectors.course_latest_fit(course=course)
    services.level_add(
        course=course, actor=pharmacist, drawn_at=START + timedelta(hours=37), conc_mg_per_l=Decimal("31.5")
    )
    second = selectors.course_latest_fit(course=course)
    assert first is not None and second is not None and second.pk != first.pk
    assert (first.levels_count, second.levels_count) == (1, 2)
    assert [row["levels"] for row in second.by_level] == [0, 1, 2]
    cls = [row["cl_l_per_h"] for row in second.by_level]
    assert len(set(round(c, 4) for c in cls)) == 3  # each level changed the clearance estimate
    assert second.result["models"][0]["status"] == "converged"
    assert second.result["curves"]["individual"] and second.result["curves"]["population"]


def test_a_corrected_dose_keeps_the_earlier_version(course, pharmacist: User) -> None:  # type: ignore[no-untyped-def]
    entry = selectors.course_doses(course=course)[0]
    line = services.DoseLine(START, Decimal(1500), Decimal("1.5"))
    new = services.dose_correct(course=course, actor=pharmacist, entry=entry, line=line)
    assert [d.amount_mg for d in selectors.course_doses(course=course)] == [Decimal(1500), Decimal(1000)]
    assert new.supersedes_id == entry.pk and DoseEntry.objects.filter(pk=entry.pk).exists()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(ValidationError):
        services.dose_correct(course=course, actor=pharmacist, entry=entry, line=line)  # already replaced


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (dict(amount_mg=Decimal(-500)), "amount_mg"),
        (dict(amount_mg=Decimal(0)), "amount_mg"),
        (dict(repeat_count=3, repeat_interval_h=None), "repeat_interval_h"),
        (dict(given_at=START + timedelta(days=5)), "given_at"),
    ],
)
def test_impossible_doses_are_refused_and_nothing_is_stored(course, pharmacist: User, line, field) -> None:  # type: ignore[no-untyped-def]
    before = (DoseEntry.objects.count(), CourseFit.objects.count(), CourseEvent.objects.count())
    values = {
        "given_at": START + timedelta(hours=1),
        "amount_mg": Decimal(500),
        "infusion_h": Decimal(1),
    } | line
    with pytest.raises(ValidationError) as exc:
        services.doses_add(course=course, actor=pharmacist, lines=[services.DoseLine(**values)])
    assert field in exc.value.message_dict
    assert (DoseEntry.objects.count(), CourseFit.objects.count(), CourseEvent.objects.count()) == before


def test_doses_out_of_order_are_refused(course, pharmacist: User) -> None:  # type: ignore[no-untyped-def]
    lines = [
        services.DoseLine(START + timedelta(hours=3), Decimal(500), Decimal(1)),
        services.DoseLine(START + timedelta(hours=1), Decimal(500), Decimal(1)),
    ]
    with pytest.raises(ValidationError) as exc:
        services.doses_add(course=course, actor=pharmacist, lines=lines)
    assert "given_at" in exc.value.message_dict


def test_a_level_before_the_first_dose_is_refused(course, pharmacist: User) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as exc:
        services.level_add(
            course=course, actor=pharmacist, drawn_at=START - timedelta(hours=1), conc_mg_per_l=Decimal(10)
        )
    assert "drawn_at" in exc.value.message_dict
    assert not LevelEntry.objects.exists()


def test_an_impossible_creatinine_is_refused_by_the_engine_checks(frozen, pharmacist: User) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError):
        services.course_create(
            actor=pharmacist, details=details(creatinine_value=Decimal(97), creatinine_unit="mg/dL")
        )
    assert not selectors.worklist(pharmacist=pharmacist)


def test_signing_stores_the_regimen_pharmacist_and_versions(course, pharmacist: User) -> None:  # type: ignore[no-untyped-def]
    services.level_add(
        course=course, actor=pharmacist, drawn_at=START + timedelta(hours=35.5), conc_mg_per_l=Decimal("14.2")
    )
    fit = selectors.course_latest_fit(course=course)
    assert fit is not None
    signed = services.regimen_sign(
        course=course, actor=pharmacist, fit=fit, chosen=ChosenRegimen(1250, 12, 1.5, 48)
    )
    assert signed.pharmacist == pharmacist and signed.dose_mg == Decimal(1250)
    assert signed.engine_version == fit.engine_version and signed.model_versions == fit.model_versions
    assert 0 < signed.trough_mg_per_l < signed.peak_mg_per_l and signed.pta is not None
    course.refresh_from_db()
    assert course.next_level_due_at == START + timedelta(hours=48 + 36, minutes=-30)


def test_signing_on_an_old_fit_is_refused(course, pharmacist: User) -> None:  # type: ignore[no-untyped-def]
    old = selectors.course_latest_fit(course=course)
    services.level_add(
        course=course, actor=pharmacist, drawn_at=START + timedelta(hours=35.5), conc_mg_per_l=Decimal("14.2")
    )
    with pytest.raises(ValidationError):
        services.regimen_sign(course=course, actor=pharmacist, fit=old, chosen=ChosenRegimen(1000, 12, 1, 48))  # type: ignore[arg-type]
    assert not SignedRegimen.objects.exists()


def test_worklist_flags_a_high_trough_and_auc(frozen, pharmacist: User) -> None:  # type: ignore[no-untyped-def]
    course = services.course_create(actor=pharmacist, details=details(creatinine_value=Decimal(250)))
    services.doses_add(
        course=course,
        actor=pharmacist,
        lines=[services.DoseLine(START, Decimal(1500), Decimal("1.5"), 2, Decimal(12))],
    )
    [row] = selectors.worklist(pharmacist=pharmacist)
    assert row.trough_high and row.auc_high and row.next_dose_at is not None


def test_worklist_flags_an_overdue_level(course, pharmacist: User) -> None:  # type: ignore[no-untyped-def]
    course.next_level_due_at = START + timedelta(hours=30)
    course.save()
    [row] = selectors.worklist(pharmacist=pharmacist)
    assert row.level_overdue


def test_worklist_holds_only_the_pharmacists_own_active_courses(course, other_pharmacist: User) -> None:  # type: ignore[no-untyped-def]
    assert selectors.worklist(pharmacist=other_pharmacist) == []


# --- pages -----------------------------------------------------------------------------------------------


def test_worklist_page_lists_the_course(course, pharmacist_client: Client) -> None:  # type: ignore[no-untyped-def]
    response = pharmacist_client.get("/dosing/")
    assert response.status_code == 200
    assert course.label in response.content.decode()
    assert "/dosing/batch/" in response.content.decode()


def test_course_page_shows_the_plot_without_javascript(course, pharmacist_client: Client) -> None:  # type: ignore[no-untyped-def]
    html = pharmacist_client.get(f"/dosing/courses/{course.pk}/").content.decode()
    assert (
        "<svg" in html
        and 'class="individual"' in html
        and 'class="population"' in html
        and 'class="band"' in html
    )


def test_editing_a_regimen_updates_the_curve(course, pharmacist_client: Client) -> None:  # type: ignore[no-untyped-def]
    base = pharmacist_client.get(f"/dosing/courses/{course.pk}/").content.decode()
    edited = pharmacist_client.get(
        f"/dosing/courses/{course.pk}/",
        {"dose_mg": "1750", "interval_h": "12", "infusion_h": "2", "start": "2026-11-22T08:00"},
    ).content.decode()
    assert "1750 mg" in edited and base.split("<svg")[1] != edited.split("<svg")[1]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"doses-0-amount_mg": "-1000"}, "剂量必须大于 0 mg"),
        ({"doses-0-amount_mg": ""}, "必填"),
        ({"doses-0-given_at": "2026-11-30T08:00"}, "该时间在将来"),
    ],
)
def test_bad_dose_rows_get_a_message_on_the_field_and_store_nothing(
    course, pharmacist_client: Client, row, message
) -> None:  # type: ignore[no-untyped-def]
    data = {
        "doses-TOTAL_FORMS": "3",
        "doses-INITIAL_FORMS": "0",
        "doses-0-given_at": "2026-11-21T20:00",
        "doses-0-amount_mg": "1000",
        "doses-0-infusion_h": "1",
        "doses-0-doses_count": "1",
    } | row
    before = DoseEntry.objects.count()
    response = pharmacist_client.post(f"/dosing/courses/{course.pk}/doses/", data)
    assert response.status_code == 400
    assert message in response.content.decode()  # in the hospital's language, on the row's field
    assert DoseEntry.objects.count() == before


def test_a_level_without_its_unit_is_refused(course, pharmacist_client: Client) -> None:  # type: ignore[no-untyped-def]
    response = pharmacist_client.post(
        f"/dosing/courses/{course.pk}/levels/", {"drawn_at": "2026-11-21T19:30", "conc": "14.2", "unit": ""}
    )
    assert response.status_code == 400 and not LevelEntry.objects.exists()


def test_a_creatinine_without_its_unit_is_refused(frozen, pharmacist_client: Client) -> None:  # type: ignore[no-untyped-def]
    data = {
        "initials": "AB",
        "sex": "male",
        "age_years": "60",
        "weight_kg": "70",
        "creatinine_value": "90",
        "creatinine_unit": "",
        "creatinine_on": "2026-11-20",
        "model_choice": "auto",
        "target_kind": "auc24",
    }
    response = pharmacist_client.post("/dosing/courses/new/", data)
    assert response.status_code == 400 and "creatinine_unit" in response.content.decode()
    assert not selectors.worklist(pharmacist=User.objects.get(username="pharm1"))


@pytest.mark.parametrize("who", ["anonymous", "patient", "desk", "administrator"])
def test_a_course_is_404_to_anyone_but_pharmacists(
    course, who, patient_client: Client, desk: User, administrator: User
) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    if who == "patient":
        client = patient_client
    elif who in ("desk", "administrator"):
        client.force_login(desk if who == "desk" else administrator)
    for url in (f"/dosing/courses/{course.pk}/", f"/dosing/courses/{course.pk}/report.pdf"):
        response = client.get(url)
        assert response.status_code in ((302,) if who == "anonymous" else (404,))
    response = client.post(
        f"/dosing/courses/{course.pk}/levels/", {"drawn_at": "2026-11-21T19:30", "conc": "14", "unit": "mg/L"}
    )
    assert response.status_code in (302, 404) and not LevelEntry.objects.exists()


def test_opening_a_linked_course_is_audited(
    frozen, pharmacist: User, pharmacist_client: Client, patient: User
) -> None:  # type: ignore[no-untyped-def]
    card = Card.objects.filter(patient__links__account=patient).first()
    data = {
        "card_number": card.number,
        "sex": "male",
        "age_years": "46",
        "weight_kg": "70",
        "creatinine_value": "90",
        "creatinine_unit": "umol/L",
        "creatinine_on": "2026-11-20",
        "model_choice": "goti_2018",
        "target_kind": "auc24",
    }
    response = pharmacist_client.post("/dosing/courses/new/", data)
    assert response.status_code == 302
    pharmacist_client.get(response["Location"])
    assert (
        AuditEvent.objects.filter(
            actor=pharmacist, patient=card.patient, action="dosing_course_viewed"
        ).count()
        == 1
    )
    assert AuditEvent.objects.filter(action="dosing_course_changed", patient=card.patient).exists()


def test_a_pharmacist_lands_on_the_worklist_after_sign_in(db, pharmacist: User) -> None:  # type: ignore[no-untyped-def]
    response = Client().post("/accounts/staff-login/", {"username": "pharm1", "password": factories.PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/dosing/"


def test_the_creatinine_read_by_screening_is_offered_and_used(
    frozen, pharmacist: User, pharmacist_client: Client, patient: User, settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from screening.models import ScreeningCase, ScreeningRun
    from screening.pipeline.types import Analyte, Extraction, Field, to_json
    from tests.screening.test_upload_service import booking_of

    settings.MEDIA_ROOT = tmp_path
    booking = booking_of(patient)
    case = ScreeningCase.objects.create(booking=booking, exam_code="ct_contrast", mode="live")
    creatinine = Analyte(
        code="creatinine",
        loinc="2160-0",
        name_en="Creatinine",
        name_zh="肌酐",
        raw_name="肌酐",
        value=1.3,
        value_raw="1.3",
        unit="mg/dL",
        value_canonical=114.92,
        unit_canonical="umol/L",
    )
    extraction = to_json(
        Extraction(analytes=(creatinine,), collected_on=Field(dt.date(2026, 11, 19), "2026-11-19", 0.99))
    )
    ScreeningRun.objects.create(
        case=case,
        step="extract",
        key="extract:test",
        input_sha256="a" * 64,
        outputs={"extraction": extraction},
    )
    linked = services.course_create(
        actor=pharmacist, details=details(initials=""), patient=factories.verified_patient_of(patient)
    )
    html = pharmacist_client.get(f"/dosing/courses/{linked.pk}/").content.decode()
    assert "1.3 mg/dL" in html and "2026-11-19" in html
    response = pharmacist_client.post(f"/dosing/courses/{linked.pk}/screening-creatinine/")
    assert response.status_code == 302
    linked.refresh_from_db()
    assert (linked.creatinine_value, linked.creatinine_unit, str(linked.creatinine_on)) == (
        Decimal("114.92"),
        "umol/L",
        "2026-11-19",
    )
    assert linked.creatinine_source.startswith("screening")


def test_engine_warnings_are_worded_and_unknown_codes_fall_back_to_the_engines_words() -> None:
    from django.utils import translation

    from dosing.wording import warning_words

    with translation.override("zh-hans"):
        known = warning_words(
            "levels[0] at 3.5 h was drawn during an infusion (3-4 h); check the sampling time"
        )
        coded = warning_words({"code": "dose_after_now", "message": "dose at 50 h is after now"})
        unknown = warning_words({"code": "brand_new_code", "message": "something new the engine says"})
    assert known.code == "level_during_infusion" and "滴注过程中" in known.text
    assert coded.code == "dose_after_now" and "晚于决策时间" in coded.text
    assert unknown.text == "something new the engine says"
