"""A new number's row and its slice's capacity in one statement: the last round trip a hold can save.

``insert_taking_capacity`` takes one number of the booking's slice by the same conditional update as
``_take_capacity`` (``taken < capacity``; the check constraint ``taken <= capacity`` backs it up) and
inserts the booking only if it did. On PostgreSQL both happen in one statement, the update in a
data-modifying ``WITH`` whose returned row is what the insert selects from:

    WITH took AS (UPDATE slot SET taken = taken + 1 WHERE id = %s AND taken < capacity RETURNING 1)
    INSERT INTO booking (...) SELECT %s, ... FROM took RETURNING id

so a full slice inserts nothing, and a refused insert (the partial unique index: the patient already has a
number in the session) undoes the update with it. The insert's SQL is Django's own for the model, so every
field, default and ``auto_now`` value is what ``Booking.objects.create`` would write. Elsewhere (SQLite, the
dev set-up) the update and the insert are two statements in the caller's transaction, as before.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.db.models.sql.subqueries import InsertQuery

from reservations.models import Booking, Slot

_TAKE_ONE = (
    'WITH took AS (UPDATE "reservations_slot" SET taken = taken + 1 WHERE id = %s AND taken < capacity '
    "RETURNING 1)"
)
_INSERT_SHAPE = re.compile(r"^(INSERT INTO .+?) VALUES \((.*)\) (RETURNING .+)$", re.DOTALL)


def insert_taking_capacity(booking: Booking) -> bool:
    """Inside a transaction: take one number of ``booking.slot_id`` and insert ``booking`` (unsaved) with it.
    False, and nothing written, when the slice has no number left. Raises ``IntegrityError`` as the insert
    would."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("insert_taking_capacity needs the caller's transaction")
    statement = _combined_statement(booking) if connection.vendor == "postgresql" else None
    if statement is None:
        if Slot.objects.filter(pk=booking.slot_id, taken__lt=F("capacity")).update(taken=F("taken") + 1) != 1:
            return False
        booking.save(force_insert=True)
        return True
    sql, params = statement
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    booking.pk = row[0]
    booking._state.adding = False
    booking._state.db = connection.alias
    return True


# The combined statement's SQL by database alias: it depends only on the model, so it is put together once
# per process (Django's insert compiler costs about 0.3 ms a hold); the values are computed on each call.
_combined_sql: dict[str, str | None] = {}


def _insert_fields() -> list[Any]:
    meta = Booking._meta
    return [f for f in meta.local_concrete_fields if f is not meta.auto_field and not f.generated]


def _combined_statement(booking: Booking) -> tuple[str, tuple[Any, ...]] | None:
    """The one statement for PostgreSQL, or None when Django's insert has an unexpected shape (then the two
    statements are used)."""
    fields = _insert_fields()
    if connection.alias not in _combined_sql:
        _combined_sql[connection.alias] = _combined_sql_for(fields)
    sql = _combined_sql[connection.alias]
    if sql is None:
        return None
    # The values as Django's insert compiler prepares them for plain fields: each field's pre_save (auto_now
    # and the like) and its database preparation. A field with its own placeholder would not match the
    # plain "%s" shape the SQL was checked for.
    params = tuple(
        field.get_db_prep_save(field.pre_save(booking, True), connection=connection) for field in fields
    )
    return sql, (booking.slot_id, *params)


def _combined_sql_for(fields: list[Any]) -> str | None:
    """Django's own insert SQL for the model, put after the conditional update; None for another shape."""
    meta = Booking._meta
    query = InsertQuery(Booking)
    query.insert_values(fields, [Booking()])
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = [meta.pk]
    [(insert_sql, _)] = compiler.as_sql()
    shape = _INSERT_SHAPE.match(insert_sql)
    if shape is None or Slot._meta.db_table != "reservations_slot":
        return None
    into, values, returning = shape.groups()
    if values != ", ".join(["%s"] * len(fields)) or any(hasattr(f, "get_placeholder") for f in fields):
        return None
    # Only Django's own SQL for the model and fixed text are put together here; every value is a parameter.
    return " ".join((_TAKE_ONE, into, "SELECT", values, "FROM took", returning))
