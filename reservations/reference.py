"""The hospital's reference rows (departments, clinic types, doctors) as a hold reads them: from this process.

A hold reads its slice with its session; the session's department, clinic type and doctor change a few times a
year, yet joining them into that read made PostgreSQL plan a five-table join for every hold of a flash crowd
(1.1 ms of the server's CPU against 0.3 ms for the slice and session alone, measured 2026-12-07). So each
process keeps the rows it read for ``LOCAL_REFERENCE_S``, as it keeps booking rules (``schedules``): a row
saved or deleted in this process is forgotten at once, and one saved in another process reaches this one at
most that much later. Each caller gets its own instance, so a change to one is never seen by another request.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TypeVar

from django.db.models import Model
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from reservations.models import ClinicType, Department, Doctor, Session

LOCAL_REFERENCE_S = 1.0
_MAX_ROWS = 10_000

_M = TypeVar("_M", bound=Model)

# (model, primary key) -> (good until, the database alias, its columns' names and values)
_rows: dict[tuple[type[Model], int], tuple[float, str, tuple[str, ...], tuple[Any, ...]]] = {}
_lock = threading.Lock()


def forget_reference_rows() -> None:
    """Drop this process's remembered rows (a row changed here; tests)."""
    with _lock:
        _rows.clear()


def reference_row(model: type[_M], pk: int) -> _M | None:
    """The row of ``model`` with this key, read at most ``LOCAL_REFERENCE_S`` ago, as a fresh instance (None
    when there is no such row)."""
    now = time.monotonic()
    found = _rows.get((model, pk))
    if found is None or found[0] <= now:
        # By key, unordered: the models' default orderings would join (a doctor's sorts by its department).
        rows = list(model._default_manager.filter(pk=pk).order_by()[:1])
        if not rows:
            return None
        instance = rows[0]
        names = tuple(field.attname for field in model._meta.concrete_fields)
        found = (now + LOCAL_REFERENCE_S, instance._state.db or "default", names,
                 tuple(getattr(instance, name) for name in names))  # fmt: skip
        with _lock:
            if len(_rows) >= _MAX_ROWS:
                _rows.clear()
            _rows[(model, pk)] = found
    _, using, names, values = found
    return model.from_db(using, names, values)


def attach_reference_rows(session: Session) -> None:
    """Put the session's department, clinic type and doctor (if any) in place, as ``select_related`` would."""
    department = reference_row(Department, session.department_id)
    clinic_type = reference_row(ClinicType, session.clinic_type_id)
    if department is None or clinic_type is None:
        # Both keys are protected: only a row deleted since the session was read gets here.
        raise Session.DoesNotExist("the session's department or clinic type no longer exists")
    Session.department.field.set_cached_value(session, department)
    Session.clinic_type.field.set_cached_value(session, clinic_type)
    doctor = reference_row(Doctor, session.doctor_id) if session.doctor_id is not None else None
    Session.doctor.field.set_cached_value(session, doctor)


@receiver(post_save, sender=Department, dispatch_uid="reference-department-saved")
@receiver(post_delete, sender=Department, dispatch_uid="reference-department-deleted")
@receiver(post_save, sender=ClinicType, dispatch_uid="reference-clinic-type-saved")
@receiver(post_delete, sender=ClinicType, dispatch_uid="reference-clinic-type-deleted")
@receiver(post_save, sender=Doctor, dispatch_uid="reference-doctor-saved")
@receiver(post_delete, sender=Doctor, dispatch_uid="reference-doctor-deleted")
def reference_row_changed(**kwargs: object) -> None:
    """Signal receiver: forget this process's remembered rows."""
    forget_reference_rows()
