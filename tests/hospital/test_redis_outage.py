"""A Redis outage under load: the test's own Redis on another port is stopped and started again while a
signed-in patient keeps using the site (a real web server, a real worker, PostgreSQL). Never the shared one.

While it is down: no server error, sessions from the database, the hold endpoint answers JSON (the shield
steps aside), /healthz says what is degraded, and tasks that could not be queued wait in the outbox. When it
is back: the kept tasks are sent and a real worker runs them.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import connection

from hospital.cache import SessionStore
from hospital.devserver import dev_environment
from medcard.models import TaskOutbox
from reservations.models import Booking
from tests import factories
from tests.conftest import require_or_skip

ROOT = Path(__file__).resolve().parents[2]
ROUNDS, STOP_AT, START_AT = 40, 10, 25

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(condition: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


class OwnRedis:
    """A redis-server of this test's own, on a free port, without persistence."""

    def __init__(self, tmp: Path) -> None:
        self.port, self.tmp, self.proc = _free_port(), tmp, None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(self.answers, 10, "redis to start")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc = None

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.exceptions.ConnectionError:
            return False


class Browser:
    """A patient's browser: cookies, and the CSRF header the site's own scripts would send."""

    def __init__(self, base: str) -> None:
        self.base, self.jar = base, CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, str, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        if data is not None:
            req.add_header("Content-Type", "application/json")
            token = next((c.value for c in self.jar if c.name == "csrftoken"), "")
            req.add_header("X-CSRFToken", token or "")
            req.add_header("Referer", self.base + "/")
        try:
            with self.opener.open(req, timeout=30) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read()
        except urllib.error.URLError as exc:  # not listening yet
            return 0, "", str(exc).encode()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    require_or_skip(shutil.which("redis-server") is not None, "redis-server is not installed")
    require_or_skip(
        connection.vendor == "postgresql", "the web server and the worker share the test database"
    )
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    if server.proc is not None:
        server.stop()


def test_a_redis_outage_under_load_degrades_without_a_server_error_and_loses_no_task(
    own_redis: OwnRedis, tmp_path: Path
) -> None:
    db = connection.settings_dict
    env = dict(
        dev_environment(),
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=f"redis://127.0.0.1:{own_redis.port}/0",
        SECRET_KEY=settings.SECRET_KEY,  # the session hash is signed with it
        HOSPITAL_VAR_DIR=str(tmp_path / "var"),
    )
    port = _free_port()
    web_log, worker_log = (tmp_path / "web.log").open("w"), (tmp_path / "worker.log").open("w")
    web = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT, env=env, stdout=web_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "hospital", "worker", "--concurrency", "1", "--pool", "solo",
         "--hostname", f"outage-{port}@%h", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        account = factories.patient_account()
        holder = factories.verified_patient_of(account)
        slots = list(factories.clinic_session(capacity=5, slices=2).slots.order_by("pk"))
        session = SessionStore()
        session[SESSION_KEY], session[BACKEND_SESSION_KEY] = (
            str(account.pk),
            settings.AUTHENTICATION_BACKENDS[0],
        )
        session[HASH_SESSION_KEY] = account.get_session_auth_hash()
        session.create()
        browser = Browser(f"http://127.0.0.1:{port}")
        browser.jar.set_cookie(_cookie(settings.SESSION_COOKIE_NAME, session.session_key or ""))
        _wait(lambda: browser.request("GET", "/healthz")[0] == 200, 60, "the web server")
        assert browser.request("GET", "/api/v1/auth/csrf/")[0] == 200

        answers: list[tuple[int, int, str]] = []
        booking_ids: list[int] = []
        for n in range(ROUNDS):
            if n == STOP_AT:
                own_redis.stop()
            if n == START_AT:
                own_redis.start()
            for method, path, body in (
                ("GET", "/", None),
                ("GET", "/api/v1/me/", None),
                ("GET", f"/accounts/patients/{holder.pk}/", None),
                ("GET", "/booking/departments/", None),
                ("POST", "/api/v1/bookings/holds/", {"slot_id": slots[n % 2].pk, "patient_id": holder.pk}),
            ):
                status, content_type, raw = browser.request(method, path, body)
                answers.append((n, status, path))
                assert status < 500, (n, path, status, raw[:300])
                if path.startswith("/api/"):
                    assert content_type.startswith("application/json"), (n, path, content_type)
                if path == "/api/v1/me/":
                    assert status == 200, (n, "signed out", raw[:200])  # the session held throughout
                if path.endswith("/holds/") and status == 201:
                    booking_ids.append(json.loads(raw)["id"])
                    # Cancelling enqueues tasks (the waitlist offer, the notification) after commit.
                    cancel = browser.request("POST", f"/api/v1/bookings/{booking_ids[-1]}/cancel/", {})
                    assert cancel[0] == 200, cancel
            if n == STOP_AT + 2:
                health = json.loads(browser.request("GET", "/healthz")[2])
                assert health["status"] == "degraded" and {"cache", "broker"} <= set(health["degraded"])
                assert health["database"]["ok"]

        outage_rounds = range(STOP_AT, START_AT)
        assert any(
            n in outage_rounds for n, status, path in answers if path.endswith("/holds/") and status == 201
        )
        kept = TaskOutbox.objects.filter(created_at__isnull=False)
        assert kept.exists(), "no task was enqueued while Redis was down"
        # Sent again by the next successful enqueue after the restart, and run by the real worker.
        _wait(lambda: not TaskOutbox.objects.filter(sent_at__isnull=True).exists(), 60, "the outbox to empty")
        results = redis.Redis(port=own_redis.port)
        for row in TaskOutbox.objects.all():
            meta = _wait(lambda row=row: results.get(f"celery-task-meta-{row.task_id}"), 60, "the worker")
            assert json.loads(meta)["status"] == "SUCCESS", meta
        assert Booking.objects.filter(pk__in=booking_ids, status="cancelled").count() == len(booking_ids)
        health = json.loads(browser.request("GET", "/healthz")[2])
        assert (
            health["cache"]["ok"]
            and health["broker"]["ok"]
            and health["outbox"] == {"ok": True, "pending": 0}
        )
    finally:
        for proc in (web, worker):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        web_log.close()
        worker_log.close()


def _cookie(name: str, value: str) -> Any:
    from http.cookiejar import Cookie

    return Cookie(
        0, name, value, None, False, "127.0.0.1", False, False, "/", True, False, None, False, None, None, {}
    )
