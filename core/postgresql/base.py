"""Django's PostgreSQL backend, health-checking a persistent connection only after it sat idle.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first query of every request: one more round
trip and one more statement for PostgreSQL on each, about a tenth of a hold's database work. A connection that
answered a query moments ago is known to work; the check is for one that sat idle while the server restarted
or a proxy dropped it. So the check runs only when the connection's last query is ``IDLE_BEFORE_CHECK_S`` or
more ago. A connection that breaks in the middle of a busy stretch still fails that one request, and Django
then replaces it (as it does with any unrecoverable error) — the same as with health checks before a request
that found it working.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.backends.postgresql import base

IDLE_BEFORE_CHECK_S = 5.0


class DatabaseWrapper(base.DatabaseWrapper):
    _used_at = 0.0  # monotonic time of the last cursor made on this connection
    health_check_done: bool  # Django's, set per request

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and not self.health_check_done
            and time.monotonic() - self._used_at < IDLE_BEFORE_CHECK_S
        ):
            self.health_check_done = True  # in use moments ago
        super().close_if_health_check_failed()

    def create_cursor(self, name: Any = None) -> Any:
        self._used_at = time.monotonic()
        return super().create_cursor(name)
