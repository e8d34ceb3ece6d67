"""The administrators' dashboard of the day: one row per department, a date to pick, and a CSV of it."""

from __future__ import annotations

from datetime import date

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from medcard import roles
from medcard.views import role_required
from reservations import dashboard
from reservations.models import Department


def _day(request: HttpRequest) -> date:
    try:
        return parse_date(request.GET.get("date", "")) or timezone.localdate()
    except ValueError:  # a well-formed but impossible date (2026-02-30)
        return timezone.localdate()


def _headers() -> list[str]:
    return [
        _("Date"),
        _("Department code"),
        _("Department (Chinese)"),
        _("Department (English)"),
        _("Booked"),
        _("Checked in"),
        _("Waiting now"),
        _("Seen"),
        _("No-shows"),
        _("Average wait (minutes)"),
    ]


@never_cache
@require_GET
@role_required(roles.ADMINISTRATOR)
def day_dashboard(request: HttpRequest) -> HttpResponse:
    day = _day(request)
    department = request.GET.get("department", "")
    rows = dashboard.day_dashboard(day=day, department_code=department)
    return render(
        request,
        "reservations/dashboard.html",
        {
            "day": day,
            "rows": rows,
            "department": department,
            "departments": Department.objects.order_by("sort_order", "code"),
            "totals": {
                "booked": sum(r.booked for r in rows),
                "checked_in": sum(r.checked_in for r in rows),
                "waiting": sum(r.waiting for r in rows),
                "seen": sum(r.seen for r in rows),
                "no_shows": sum(r.no_shows for r in rows),
            },
        },
    )


@never_cache
@require_GET
@role_required(roles.ADMINISTRATOR)
def day_dashboard_csv(request: HttpRequest) -> HttpResponse:
    day = _day(request)
    rows = dashboard.day_dashboard(day=day, department_code=request.GET.get("department", ""))
    body = dashboard.day_dashboard_csv(day=day, rows=rows, headers=_headers())
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="dashboard-{day.isoformat()}.csv"'
    return response
