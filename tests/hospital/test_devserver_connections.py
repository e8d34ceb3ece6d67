"""The development server on PostgreSQL: many concurrent requests leave no database connections behind."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection

from hospital.devserver import dev_environment
from tests.conftest import require_or_skip

ROOT = Path(__file__).resolve().parents[2]
REQUESTS, CONCURRENCY = 200, 20

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connections_to(database: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        )
        return int(cursor.fetchone()[0])


def test_the_dev_server_closes_each_request_thread_s_connection() -> None:
    require_or_skip(connection.vendor == "postgresql", "connection counts are read from PostgreSQL")
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    port = _free_port()
    env = dict(dev_environment(), DATABASE_URL=url, DATABASE_CONN_MAX_AGE="60")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/booking/departments/", timeout=5).close()  # noqa: S310
                break
            except OSError:
                time.sleep(0.3)

        def get(n: int) -> int:
            with urllib.request.urlopen(f"{base}/booking/departments/?q=n{n}", timeout=60) as response:  # noqa: S310
                return int(response.status)

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            statuses = list(pool.map(get, range(REQUESTS)))
        assert statuses == [200] * REQUESTS
        time.sleep(1)
        left = _connections_to(db["NAME"])
        assert left <= 2, f"{left} connections left open by {REQUESTS} requests"
    finally:
        server.terminate()
        server.wait(timeout=30)
