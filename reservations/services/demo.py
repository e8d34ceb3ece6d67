"""Demo data: departments, doctors, clinic types, weekly templates and sessions."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

from django.db import transaction

from reservations import discovery, schedules
from reservations.demo_data import (
    CLINIC_TYPES,
    DEPARTMENTS,
    DOCTORS,
    EXAM_ROOMS,
    PREPARATION,
    TITLE_CLINIC,
)
from reservations.models import ClinicType, Department, Doctor, WeeklyTemplate


@transaction.atomic
def demo_departments_seed() -> tuple[int, int]:
    """Create or refresh the demo departments and doctors by their codes; running it twice changes nothing.

    Returns the number of departments and doctors present afterwards.
    """
    for order, (code, name_zh, name_en, kind, desc_zh, desc_en) in enumerate(DEPARTMENTS):
        Department.objects.update_or_create(
            code=code,
            defaults={
                "name_zh": name_zh,
                "name_en": name_en,
                "kind": kind,
                "description_zh": desc_zh,
                "description_en": desc_en,
                "sort_order": order,
            },
        )
    departments = {d.code: d for d in Department.objects.all()}
    for dept_code, code, name_zh, name_en, title, spec_zh, spec_en in DOCTORS:
        Doctor.objects.update_or_create(
            code=code,
            defaults={
                "department": departments[dept_code],
                "name_zh": name_zh,
                "name_en": name_en,
                "title": title,
                "specialty_zh": spec_zh,
                "specialty_en": spec_en,
            },
        )
    return Department.objects.count(), Doctor.objects.count()


@transaction.atomic
def demo_schedule_seed() -> int:
    """Clinic types, the hospital's default booking rule, a weekly template per doctor (two half-days a
    week, 30-minute slices of 4 numbers, 1 kept for the desk) and per examination room; then sessions for the
    release horizon. Idempotent. Returns the number of sessions created."""
    types = {}
    for code, name_zh, name_en, fee, exam in CLINIC_TYPES:
        types[code], _ = ClinicType.objects.update_or_create(
            code=code,
            defaults={
                "name_zh": name_zh,
                "name_en": name_en,
                "fee": Decimal(fee),
                "screening_exam": exam,
                "preparation_zh": PREPARATION.get(code, ("", ""))[0],
                "preparation_en": PREPARATION.get(code, ("", ""))[1],
            },
        )
    schedules.booking_rule_default()
    for index, doctor in enumerate(Doctor.objects.select_related("department").order_by("code")):
        for weekday, half_day in ((index % 5, "am"), ((index + 2) % 5, "pm")):
            start, end = (time(8, 0), time(11, 30)) if half_day == "am" else (time(13, 30), time(16, 30))
            WeeklyTemplate.objects.get_or_create(
                department=doctor.department,
                doctor=doctor,
                weekday=weekday,
                half_day=half_day,
                defaults={
                    "clinic_type": types[TITLE_CLINIC.get(doctor.title, "general")],
                    "start_time": start,
                    "end_time": end,
                    "slice_minutes": 30,
                    "quota_per_slice": 4,
                    "desk_quota_per_slice": 1,
                },
            )
    for department_code, room, weekdays, clinic_type in EXAM_ROOMS:
        department = Department.objects.get(code=department_code)
        for weekday in weekdays:
            WeeklyTemplate.objects.get_or_create(
                department=department,
                doctor=None,
                room=room,
                weekday=weekday,
                half_day="am",
                defaults={
                    "clinic_type": types[clinic_type],
                    "start_time": time(8, 0),
                    "end_time": time(12, 0),
                    "slice_minutes": 20,
                    "quota_per_slice": 3,
                },
            )
    discovery.department_pinyin_refresh()
    return schedules.sessions_generate(days_ahead=schedules.generation_horizon_days())
