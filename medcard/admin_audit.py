"""The audit of the admin site: every add, change and delete made there writes an audit row (who, which
patient if any, which object, each changed field's value before and after), in the admin's transaction.

Model admins take :class:`AuditedAdmin` as their base; actions record their own rows through
:func:`admin_audit`. Reads of personal data in the admin (opening a patient's page, looking a patient up
by card or mobile number) are recorded with :func:`admin_read_audit`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models, transaction
from django.http import HttpRequest

from medcard.models import AuditEvent, Patient, User
from medcard.services.audit import audit_record

# Never written into an audit row, even encrypted: the row is read by more people than the data.
SECRET_SUFFIXES = ("_ciphertext", "_index", "_hash", "password", "sha256")


def plain(value: Any) -> Any:
    """A value as JSON can hold it: objects by primary key, dates in ISO form, money as a string."""
    if value is None or isinstance(value, bool | int | str | float):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, Iterable) and not isinstance(value, bytes | dict):
        return [plain(item) for item in value]
    return str(value)


def _secret(name: str) -> bool:
    return name.endswith(SECRET_SUFFIXES)


def form_changes(form: forms.BaseForm, *, adding: bool) -> dict[str, list[Any]]:
    """``{"field": [before, after]}`` for every field the form changed (``before`` is None when adding)."""
    changes: dict[str, list[Any]] = {}
    for name in form.changed_data:
        if _secret(name):
            changes[name] = ["***", "***"]
            continue
        before = None if adding else form[name].initial
        changes[name] = [plain(before), plain(form.cleaned_data.get(name))]
    return changes


def object_values(obj: models.Model) -> dict[str, list[Any]]:
    """Every concrete field of a deleted object, as ``{"field": [value, None]}`` (secrets left out)."""
    return {
        field.attname: [plain(getattr(obj, field.attname)), None]
        for field in obj._meta.concrete_fields
        if not _secret(field.name)
    }


def target_of(obj: models.Model) -> str:
    """How an audit row names the object: ``"weeklytemplate 3"``."""
    return f"{obj._meta.model_name} {obj.pk}"[:60]


def patient_of(obj: Any) -> Patient | None:
    """The patient an object belongs to, if any (directly, or through its booking or payment)."""
    if isinstance(obj, Patient):
        return obj
    for path in ("patient", "booking", "payment"):
        if hasattr(type(obj), path):
            related = getattr(obj, path, None)
            return patient_of(related) if related is not None else None
    return None


def admin_audit(
    *,
    request: HttpRequest,
    action: str,
    obj: models.Model,
    changes: dict[str, list[Any]] | None = None,
    reason: str = "",
    detail: str = "",
) -> AuditEvent:
    """One audit row for an administrative change of ``obj`` by the signed-in member of staff."""
    actor = request.user if isinstance(request.user, User) else None
    return audit_record(
        actor=actor,
        patient=patient_of(obj),
        action=action,
        fields=",".join(changes or {})[:200],
        reason=reason,
        detail=detail,
        target=target_of(obj),
        changes=changes or {},
    )


def admin_read_audit(*, request: HttpRequest, patient: Patient | None, detail: str, target: str = "") -> None:
    """Record that staff saw a patient's (masked) personal data in the admin, or looked a patient up."""
    actor = request.user if isinstance(request.user, User) else None
    audit_record(
        actor=actor,
        patient=patient,
        action=AuditEvent.Action.ADMIN_VIEWED,
        detail=detail,
        target=target[:60],
    )


class AuditedAdmin(admin.ModelAdmin[Any]):
    """A model admin whose adds, changes and deletes (inline rows and bulk deletes included) are audited."""

    def save_model(self, request: HttpRequest, obj: Any, form: forms.ModelForm[Any], change: bool) -> None:
        changes = form_changes(form, adding=not change)
        super().save_model(request, obj, form, change)
        if changes or not change:
            action = AuditEvent.Action.ADMIN_CHANGED if change else AuditEvent.Action.ADMIN_ADDED
            admin_audit(request=request, action=action, obj=obj, changes=changes)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # The values before are read from each row's form before the formset writes them.
        pending = []
        for row in formset.forms:
            if row in formset.deleted_forms or not row.has_changed():
                continue
            pending.append((row, row.instance.pk is None, form_changes(row, adding=row.instance.pk is None)))
        deleted = [
            (row.instance, target_of(row.instance), patient_of(row.instance), object_values(row.instance))
            for row in formset.deleted_forms
            if row.instance.pk is not None
        ]
        super().save_formset(request, form, formset, change)
        for row, adding, changes in pending:
            action = AuditEvent.Action.ADMIN_ADDED if adding else AuditEvent.Action.ADMIN_CHANGED
            admin_audit(request=request, action=action, obj=row.instance, changes=changes)
        for _instance, target, patient, values in deleted:
            audit_record(
                actor=request.user if isinstance(request.user, User) else None,
                patient=patient,
                action=AuditEvent.Action.ADMIN_DELETED,
                target=target,
                changes=values,
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        target, patient, values = target_of(obj), patient_of(obj), object_values(obj)
        super().delete_model(request, obj)
        audit_record(
            actor=request.user if isinstance(request.user, User) else None,
            patient=patient,
            action=AuditEvent.Action.ADMIN_DELETED,
            target=target,
            changes=values,
        )

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        # One by one, so each deleted object has its own audit row (the admin's bulk delete is one query);
        # all or none, as the admin's delete page does.
        with transaction.atomic():
            for obj in queryset:
                self.delete_model(request, obj)
