"""A hold's reference rows (department, clinic type, doctor) come from the process, and changes reach it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reservations import reference
from reservations.models import ClinicType, Department, Doctor
from tests import factories

pytestmark = pytest.mark.django_db


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(reference.time, "monotonic", clock)
    return clock


def test_a_row_is_read_once_and_each_caller_gets_its_own_instance(clock: _Clock) -> None:
    department = factories.clinic_session().department
    with CaptureQueriesContext(connection) as queries:
        first = reference.reference_row(Department, department.pk)
        second = reference.reference_row(Department, department.pk)
    assert len(queries) == 1
    assert first is not None and second is not None and first is not second
    assert (first.pk, first.name_zh, first.code) == (department.pk, department.name_zh, department.code)
    first.name_zh = "changed by one request"
    assert second.name_zh == department.name_zh
    third = reference.reference_row(Department, department.pk)
    assert third is not None and third.name_zh == department.name_zh  # nobody else sees the change


def test_a_row_saved_in_this_process_is_seen_at_once(clock: _Clock) -> None:
    clinic_type = factories.clinic_session().clinic_type
    assert reference.reference_row(ClinicType, clinic_type.pk).screening_exam == ""  # type: ignore[union-attr]
    clinic_type.screening_exam = "ct-contrast"
    clinic_type.save()
    assert reference.reference_row(ClinicType, clinic_type.pk).screening_exam == "ct-contrast"  # type: ignore[union-attr]


def test_a_row_changed_elsewhere_is_seen_within_the_window(clock: _Clock) -> None:
    doctor = factories.clinic_session().doctor
    assert reference.reference_row(Doctor, doctor.pk).name_zh == "王医生"  # type: ignore[union-attr]
    Doctor.objects.filter(pk=doctor.pk).update(name_zh="李医生")  # no signal: as another process's save
    clock.now += reference.LOCAL_REFERENCE_S / 2
    assert reference.reference_row(Doctor, doctor.pk).name_zh == "王医生"  # type: ignore[union-attr]
    clock.now += reference.LOCAL_REFERENCE_S
    assert reference.reference_row(Doctor, doctor.pk).name_zh == "李医生"  # type: ignore[union-attr]


def test_a_missing_row_is_none(clock: _Clock) -> None:
    assert reference.reference_row(Department, 987_654_321) is None
