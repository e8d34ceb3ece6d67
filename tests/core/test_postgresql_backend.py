"""The PostgreSQL backend health-checks a persistent connection only after it sat idle."""

from __future__ import annotations

import psycopg2
import pytest
from django.db import DatabaseError, connection, connections

from core.postgresql import base
from tests.conftest import require_or_skip


def _postgresql_only() -> None:
    require_or_skip(connection.vendor == "postgresql", "the backend under test is PostgreSQL's")


def _new_request() -> None:
    """What Django does between two requests with a persistent connection."""
    connection.close_if_unusable_or_obsolete()


def _kill_server_side() -> None:
    """The server ends this connection (a restart, a proxy dropping it)."""
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    other = psycopg2.connect(**params)
    other.autocommit = True
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    other.close()


def _dropped_between_requests() -> None:
    """A request used the connection; before the next one the server dropped it."""
    _postgresql_only()
    _one()
    _new_request()
    _kill_server_side()


def _one() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return int(cursor.fetchone()[0])


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The health checks sent (Django's is_usable), counted."""
    calls: list[int] = []
    original = base.DatabaseWrapper.is_usable

    def counting(self: base.DatabaseWrapper) -> bool:
        calls.append(1)
        return bool(original(self))

    monkeypatch.setattr(base.DatabaseWrapper, "is_usable", counting)
    return calls


@pytest.mark.django_db(transaction=True)
def test_a_connection_in_use_moments_ago_is_not_checked_again(checked: list[int]) -> None:
    _postgresql_only()
    assert isinstance(connections["default"], base.DatabaseWrapper)
    _one()
    for _ in range(3):
        _new_request()
        assert _one() == 1
    assert checked == []


@pytest.mark.django_db(transaction=True)
def test_an_idle_connection_the_server_dropped_is_replaced_before_the_query(checked: list[int]) -> None:
    _dropped_between_requests()
    wrapper = connections["default"]
    assert isinstance(wrapper, base.DatabaseWrapper)
    wrapper._used_at -= base.IDLE_BEFORE_CHECK_S + 1  # it sat idle
    assert _one() == 1  # checked, found dead, reconnected: the request never sees the failure
    assert checked == [1]


@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_while_busy_fails_one_request_then_is_replaced(checked: list[int]) -> None:
    _dropped_between_requests()
    with pytest.raises(DatabaseError):
        _one()
    _new_request()  # Django drops a connection that raised an unrecoverable error
    assert _one() == 1
