"""Writes for departments and doctors."""

from __future__ import annotations

from django.db import transaction

from reservations.demo_data import DEPARTMENTS, DOCTORS
from reservations.models import Department, Doctor


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
