from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from reservations import selectors


@require_GET
def department_list(request: HttpRequest) -> HttpResponse:
    return render(request, "reservations/department_list.html", {"departments": selectors.department_list()})
