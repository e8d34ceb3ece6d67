"""Querysets compiled to SQL once per process, then run again with new parameters.

For the few reads on the morning's hot path (a hold under a flash crowd) building and compiling a queryset
costs more Python time than the database spends answering it: about half a millisecond a query, where the
answer takes a tenth of that. :class:`Prepared` builds the queryset once per database alias with stand-in
values for its parameters, keeps Django's SQL and the compiler's description of the selected columns, and
on each call only swaps the real values in, sends the statement and turns the rows into model instances (or
tuples) exactly as the queryset would. The queries stay written in the ORM, and a test runs each one both
ways and compares.

Only what the hot path needs is supported: parameters that are integers, strings or dates, querysets that
yield model instances (with ``select_related``) or ``values_list`` tuples, and ``select_for_update`` (still
refused outside a transaction). Integer parameters are keys: one beyond the 64-bit range (a number typed into
a URL or a request body) finds no row, as the ORM's own lookup does, instead of reaching the database (SQLite
cannot even take it).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable, ValuesListIterable
from django.db.models.query import get_related_populators as _populators  # type: ignore[attr-defined]
from django.db.transaction import TransactionManagementError

Param = int | str | date

_KEY_RANGE = range(-(2**63), 2**63)  # a 64-bit integer column's values
_STAND_IN_BASE = -7_303_000_000_001  # far from any key; each parameter gets its own value
_STAND_IN_DAY = date(1111, 11, 11)


def _stand_in(index: int, kind: type) -> Param:
    if kind is int:
        return _STAND_IN_BASE - index
    if kind is str:
        return f"\x1fprepared-parameter-{index}\x1f"
    if kind is date:
        return _STAND_IN_DAY + timedelta(days=index)
    raise TypeError(f"Prepared queries take int, str or date parameters, not {kind.__name__}")


def _adapt(value: Any, kind: type, ops: Any) -> Any:
    """The value as the ORM would send it for a parameter first given as ``kind``: an id given as "5" is 5
    (and "x" a ValueError, as the ORM's own lookup), a date goes through the backend's adapter."""
    if kind is date:
        if not isinstance(value, date):
            raise TypeError(f"a prepared query's date parameter got {type(value).__name__}")
        return ops.adapt_datefield_value(value)
    if kind is int and isinstance(value, bool):
        raise TypeError("a prepared query's integer parameter got a bool")
    return kind(value)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]  # the fixed parameters, with the stand-ins' places overwritten on each call
    places: tuple[tuple[int, int], ...]  # (position in params, index of the caller's argument)
    kinds: tuple[type, ...]
    for_update: bool
    converters: tuple[tuple[int, tuple[Any, Any]], ...]  # (column, (converter functions, expression))
    models: bool  # model instances (else values_list tuples)
    model: Any  # the model class (None for values_list rows)
    init_list: tuple[str, ...]
    model_slice: tuple[int, int]
    populators: tuple[Any, ...]


class Prepared:
    """``build(*params)`` returns the queryset; calling the instance with the same parameters runs it and
    returns a list, as ``list(queryset)`` would. For example
    ``Prepared(lambda pk: Slot.objects.select_related("session").filter(pk=pk)[:1])(5)``.
    """

    def __init__(self, build: Callable[..., QuerySet[Any, Any]]) -> None:
        """``build`` takes the parameters positionally; the types of the first call's arguments are the
        parameters' types from then on."""
        self._build = build
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def queryset(self, *params: Param) -> QuerySet[Any, Any]:
        """The queryset itself, for comparison in tests."""
        return self._build(*params)

    def __call__(self, *params: Param, using: str = "default") -> list[Any]:
        compiled = self._compiled.get(using)
        if compiled is None:
            compiled = self._compile(params, using)
        connection = connections[using]
        if compiled.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        values = list(compiled.params)
        ops = connection.ops
        for position, index in compiled.places:
            value = _adapt(params[index], compiled.kinds[index], ops)
            if compiled.kinds[index] is int and value not in _KEY_RANGE:
                return []  # no row has such a key
            values[position] = value
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, values)
            rows = cursor.fetchall()
        if not rows:
            return []
        if compiled.converters:
            rows = _converted(rows, compiled.converters, connection)
        if not compiled.models:
            return [tuple(row) for row in rows]
        start, end = compiled.model_slice
        objects = []
        for row in rows:
            obj = compiled.model.from_db(using, compiled.init_list, row[start:end])
            for populator in compiled.populators:
                populator.populate(row, obj)
            objects.append(obj)
        return objects

    def _compile(self, params: Sequence[Param], using: str) -> _Compiled:
        with self._lock:
            if using in self._compiled:
                return self._compiled[using]
            kinds = tuple(type(value) for value in params)
            stand_ins = [_stand_in(index, kind) for index, kind in enumerate(kinds)]
            queryset = self._build(*stand_ins).using(using)
            if getattr(queryset, "_known_related_objects", None) or getattr(
                queryset, "_prefetch_related_lookups", None
            ):
                raise ValueError("Prepared queries do not support related managers or prefetching")
            models = queryset._iterable_class is ModelIterable
            if not models and queryset._iterable_class is not ValuesListIterable:
                raise ValueError("Prepared queries yield model instances or values_list tuples")
            compiler = queryset.query.get_compiler(using=using)
            sql, fixed = compiler.as_sql()  # also describes the selected columns (select, klass_info)
            # The columns' converters, as the compiler's results_iter finds them on every run.
            columns = [column[0] for column in compiler.select[0 : compiler.col_count]]
            if compiler.has_composite_fields(columns):
                raise ValueError("Prepared queries do not support composite primary keys")
            converters = tuple(compiler.get_converters(columns).items())
            ops = connections[using].ops
            wanted = [_adapt(value, kind, ops) for value, kind in zip(stand_ins, kinds, strict=True)]
            places = tuple(
                (position, index)
                for position, index in itertools.product(range(len(fixed)), range(len(wanted)))
                if fixed[position] == wanted[index]
            )
            if sorted({index for _, index in places}) != list(range(len(wanted))):
                raise ValueError("a parameter of the prepared query did not reach its SQL unchanged")
            model, init_list, model_slice, populators = None, (), (0, 0), ()
            if models:
                klass_info = compiler.klass_info
                model = klass_info["model"]
                select_fields = klass_info["select_fields"]
                model_slice = (select_fields[0], select_fields[-1] + 1)
                init_list = tuple(
                    column[0].target.attname for column in compiler.select[model_slice[0] : model_slice[1]]
                )
                populators = tuple(_populators(klass_info, compiler.select, using))
            compiled = _Compiled(
                sql=sql,
                params=tuple(fixed),
                places=places,
                kinds=kinds,
                for_update=bool(queryset.query.select_for_update),
                converters=converters,
                models=models,
                model=model,
                init_list=init_list,
                model_slice=model_slice,
                populators=populators,
            )
            self._compiled[using] = compiled
            return compiled


def _converted(
    rows: list[Any], converters: Sequence[tuple[int, tuple[Any, Any]]], connection: Any
) -> list[Any]:
    """The rows with each column's database converters applied, as the compiler applies them."""
    converted = []
    for row in rows:
        values = list(row)
        for position, (functions, expression) in converters:
            value = values[position]
            for function in functions:
                value = function(value, expression, connection)
            values[position] = value
        converted.append(values)
    return converted
