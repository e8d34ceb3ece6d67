"""Reads for departments and doctors."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from reservations.models import Department


def department_list(*, kind: str | None = None) -> QuerySet[Department]:
    """Departments in display order, with how many doctors each has."""
    qs = Department.objects.annotate(doctor_count=Count("doctors"))
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("sort_order", "code")
