"""Morning slot release: 2,000 verified patients try to hold one of 200 numbers at the same moment.

Run: ``make bench-surge`` (``.venv/bin/python -m hospital.devserver exec -- .venv/bin/python
bench/booking_surge.py``). It needs PostgreSQL and Redis on 127.0.0.1 (``DATABASE_URL`` / ``REDIS_URL``, or
the local servers, database ``hospital_bench``). It seeds the patients (kept between runs), releases a fresh
session with one slice of 200 numbers, starts gunicorn and a Celery worker, and lets ``--clients`` concurrent
clients fire every patient's hold over HTTP at once (``POST /api/v1/bookings/holds/``). Then it pays for every
granted hold through the sandbox gateway (``POST .../payments/`` and the sandbox cashier; the worker delivers
the signed notifications) and waits until all are booked.

In the same run, at the same concurrency, it measures the ceiling of the raw SQL transaction (the same
conditional update and insert, issued directly with psycopg2) and prints the ratio. Every loop is bounded
and all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import http.cookiejar
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._local import bench_database_url, free_port, percentile  # noqa: E402
from hospital.devserver import dev_environment  # noqa: E402

SEED = """
import json
from datetime import date, timedelta
from medcard import idnumber, services
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
# Patients who signed in before the release have their session in the cache (cached_db), as in production.
from hospital.cache import SessionStore
from django.utils import timezone
from medcard.models import Patient, User
from medcard.services import mobile_index
from tests import factories
wanted = {patients}
accounts = []
for n in range(wanted):
    mobile = str(13300000000 + n)
    user = User.objects.filter(mobile_index=mobile_index(mobile)).first()
    if user is None:
        user = services.patient_account_create(mobile=mobile, password=None)
    if not Patient.objects.filter(links__account=user, links__relationship="self").exists():
        birth = date(1950, 1, 1) + timedelta(days=n)
        first17 = "310104" + birth.strftime("%Y%m%d") + "777"
        factories.add_patient(user, name="抢号" + str(n), birth=birth, relationship="self",
                              id_number=first17 + idnumber.resident_id_check_character(first17))
    accounts.append(user)
# Earlier runs' numbers would trip the per-patient rules: give them back first.
from reservations.models import Booking
Booking.objects.filter(account__in=accounts, status__in=["held", "booked"]).update(status="cancelled")
stamp = timezone.now().strftime("%m%d%H%M%S%f")
session = factories.clinic_session(capacity={capacity}, fee="50.00", days_ahead=2,
                                   department_code="surge-" + stamp, doctor_code="surge-" + stamp)
slot = session.slots.get()
rows = []
for user in accounts:
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "medcard.backends.LockoutBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    patient = Patient.objects.filter(links__account=user, links__relationship="self").first()
    rows.append([store.session_key, patient.pk])
print(json.dumps({"slot": slot.pk, "session": session.pk, "clients": rows}))
"""

RAW_SETUP = """
DROP TABLE IF EXISTS bench_raw_booking; DROP TABLE IF EXISTS bench_raw_slot;
CREATE TABLE bench_raw_slot (id int PRIMARY KEY, capacity int NOT NULL, taken int NOT NULL DEFAULT 0,
                             CHECK (taken <= capacity));
CREATE TABLE bench_raw_booking (id bigserial PRIMARY KEY, slot_id int NOT NULL REFERENCES bench_raw_slot(id),
                                patient_id int NOT NULL, status text NOT NULL,
                                created_at timestamptz NOT NULL);
CREATE UNIQUE INDEX bench_raw_one_active ON bench_raw_booking (patient_id, slot_id) WHERE status = 'held';
INSERT INTO bench_raw_slot (id, capacity) VALUES (1, %s);
"""


_LOCAL = threading.local()


def _connection(base: str) -> http.client.HTTPConnection:
    conn = getattr(_LOCAL, "conn", None)
    if conn is None:
        parts = urllib.parse.urlsplit(base)
        conn = _LOCAL.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    return conn


class Phone:
    """One patient's signed-in phone: its session cookie and a CSRF token pair."""

    def __init__(self, base: str, session_key: str) -> None:
        self.base = base
        self.session_key = session_key
        self.csrf = secrets.token_hex(16)
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), urllib.request.HTTPRedirectHandler()
        )
        host = urllib.parse.urlsplit(base).hostname or "127.0.0.1"
        for name, value in (("sessionid", session_key), ("csrftoken", self.csrf)):
            self.jar.set_cookie(
                http.cookiejar.Cookie(
                    0,
                    name,
                    value,
                    None,
                    False,
                    host,
                    False,
                    False,
                    "/",
                    True,
                    False,
                    None,
                    False,
                    None,
                    None,
                    {},
                )
            )

    def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, Any, float]:
        """One POST over this thread's kept-alive connection, as a phone's browser would reuse it."""
        headers = {
            "Content-Type": "application/json",
            "X-CSRFToken": self.csrf,
            "Cookie": f"sessionid={self.session_key}; csrftoken={self.csrf}",
        }
        start = time.perf_counter()
        for attempt in range(2):
            conn = _connection(self.base)
            try:
                conn.request("POST", path, body=json.dumps(body), headers=headers)
                response = conn.getresponse()
                status, payload = response.status, response.read()
                break
            except (http.client.HTTPException, OSError):
                _LOCAL.conn = None  # the server closed a kept-alive connection: open a new one once
                if attempt:
                    raise
        seconds = time.perf_counter() - start
        try:
            return status, json.loads(payload or b"null"), seconds
        except ValueError:
            return status, None, seconds

    def post_form(self, url: str, fields: dict[str, str]) -> int:
        data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": self.csrf}).encode()
        request = urllib.request.Request(url, data=data, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(request, timeout=60) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code


def _fire(clients: int, jobs: list[Any], work: Any) -> tuple[list[Any], float]:
    """Run ``work(job)`` for every job on ``clients`` threads, all released at the same moment."""
    results: list[Any] = [None] * len(jobs)
    barrier = threading.Barrier(clients)
    chunks = [list(range(n, len(jobs), clients)) for n in range(clients)]

    def run(indexes: list[int]) -> None:
        barrier.wait(timeout=60)
        for index in indexes:
            results[index] = work(jobs[index])

    threads = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return results, time.perf_counter() - start


async def _fire_holds(
    base: str, clients: int, phones: list[tuple[Phone, int]], slot_id: int
) -> tuple[list[tuple[int, Any, float]], float]:
    """The surge itself: ``clients`` kept-alive HTTP/1.1 connections on one asyncio loop, opened first and
    then released together. A plain socket client costs the shared 2 cores far less than a thread per
    connection, which leaves them to the server being measured."""
    parts = urllib.parse.urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    results: list[tuple[int, Any, float]] = [(0, None, 0.0)] * len(phones)
    start_gate = asyncio.Event()

    async def one_connection(indexes: list[int]) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        await start_gate.wait()
        for index in indexes:
            phone, patient_id = phones[index]
            body = json.dumps({"patient_id": patient_id, "slot_id": slot_id}).encode()
            request = (
                f"POST /api/v1/bookings/holds/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"X-CSRFToken: {phone.csrf}\r\n"
                f"Cookie: sessionid={phone.session_key}; csrftoken={phone.csrf}\r\n"
                "Connection: keep-alive\r\n\r\n"
            ).encode() + body
            began = time.perf_counter()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            payload = await reader.readexactly(length)
            seconds = time.perf_counter() - began
            try:
                results[index] = (status, json.loads(payload or b"null"), seconds)
            except ValueError:
                results[index] = (status, None, seconds)
            if b"connection: close" in head.lower():
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
        writer.close()

    tasks = [
        asyncio.create_task(one_connection(list(range(n, len(phones), clients)))) for n in range(clients)
    ]
    await asyncio.sleep(0.5)  # every connection is open and waiting at the gate
    began = time.perf_counter()
    start_gate.set()
    await asyncio.gather(*tasks)
    return results, time.perf_counter() - began


def raw_sql_ceiling(dsn: str, clients: int, attempts: int, capacity: int) -> tuple[float, int, list[float]]:
    """The same transaction (conditional update, insert) straight through psycopg2, same concurrency."""
    with psycopg2.connect(dsn) as setup, setup.cursor() as cursor:
        cursor.execute(RAW_SETUP, (capacity,))
    local = threading.local()
    opened: list[Any] = []

    def attempt(patient_id: int) -> tuple[bool, float]:
        if not hasattr(local, "conn"):
            local.conn = psycopg2.connect(dsn)
            opened.append(local.conn)
        start = time.perf_counter()
        with local.conn, local.conn.cursor() as cursor:
            cursor.execute("UPDATE bench_raw_slot SET taken = taken + 1 WHERE id = 1 AND taken < capacity")
            won = cursor.rowcount == 1
            if won:
                cursor.execute(
                    "INSERT INTO bench_raw_booking (slot_id, patient_id, status, created_at) "
                    "VALUES (1, %s, 'held', now())",
                    (patient_id,),
                )
        return won, time.perf_counter() - start

    results, wall = _fire(clients, list(range(attempts)), attempt)
    for conn in opened:
        conn.close()
    with psycopg2.connect(dsn) as check, check.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM bench_raw_booking")
        granted = int(cursor.fetchone()[0])
        cursor.execute("DROP TABLE bench_raw_booking; DROP TABLE bench_raw_slot")
    return attempts / wall, granted, [seconds for _, seconds in results]


def _dsn(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    database = parts.path.lstrip("/")
    return f"host={parts.hostname} port={parts.port or 5432} dbname={database} user={parts.username}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--capacity", type=int, default=200)
    parser.add_argument(
        "--clients", type=int, default=64, help="concurrent HTTP clients (and raw SQL threads)"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (gthread)")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    args = parser.parse_args()

    env = dev_environment()
    env["DATABASE_URL"] = bench_database_url(env)
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/3")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The production configuration (DEBUG off: no query log, no static-file autorefresh), with the dev
    # runner's throwaway secrets, the sandbox gateway, and plain HTTP on the loopback.
    env.update(
        PUBLIC_BASE_URL=base,
        PAYMENT_SANDBOX="true",
        ALLOW_SANDBOX_BACKENDS="true",
        LOG_LEVEL="WARNING",
        DJANGO_DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
    )
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    # With DEBUG off, pages name their static files through the collected manifest, as in a deployment.
    subprocess.run(
        [python, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    started = time.perf_counter()
    seed = SEED.replace("{patients}", str(args.patients)).replace("{capacity}", str(args.capacity))
    seeded = subprocess.run(
        [python, "manage.py", "shell", "-c", seed],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if seeded.returncode != 0:
        print(seeded.stderr[-3000:], file=sys.stderr)
        return 2
    plan = json.loads(seeded.stdout.strip().splitlines()[-1])
    print(
        f"seeded {len(plan['clients'])} verified patients in {time.perf_counter() - started:.1f} s "
        f"(kept for later runs); session {plan['session']}, one slice of {args.capacity} numbers"
    )

    # The server's log (a warning line per refused hold, as in production) goes to a file, not the screen.
    log_path = Path(env["HOSPITAL_VAR_DIR"]) / "bench-surge-server.log"
    server_log = log_path.open("wb")
    server = subprocess.Popen(
        [
            python,
            "-m",
            "gunicorn",
            "hospital.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--worker-class",
            "gthread",
            "--log-level",
            "warning",
            "--backlog",
            "4096",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=server_log,
        stderr=server_log,
    )
    worker = subprocess.Popen(
        [
            python,
            "-m",
            "celery",
            "-A",
            "hospital",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            "2",
            "--hostname",
            f"surge-{port}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/api/v1/departments/", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        phones = [(Phone(base, key), patient_id) for key, patient_id in plan["clients"]]
        # Warm every worker's connections and imports (not counted).
        _fire(
            args.clients, phones[: args.clients], lambda job: job[0].post_json("/api/v1/bookings/holds/", {})
        )

        def hold(job: tuple[Phone, int]) -> tuple[int, Any, float]:
            phone, patient_id = job
            return phone.post_json(
                "/api/v1/bookings/holds/", {"patient_id": patient_id, "slot_id": plan["slot"]}
            )

        results, wall = asyncio.run(_fire_holds(base, args.clients, phones, plan["slot"]))
        statuses = Counter(status for status, _, _ in results)
        codes = Counter(
            (body or {}).get("error", {}).get("code") for status, body, _ in results if status != 201
        )
        latencies = [seconds for _, _, seconds in results]
        granted = [(phones[i][0], body["id"]) for i, (status, body, _) in enumerate(results) if status == 201]

        with psycopg2.connect(_dsn(env["DATABASE_URL"])) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT taken, capacity FROM reservations_slot WHERE id = %s", (plan["slot"],))
            taken, capacity = cursor.fetchone()
            cursor.execute(
                "SELECT count(*) FROM reservations_booking WHERE slot_id = %s AND status = 'held'",
                (plan["slot"],),
            )
            held_rows = int(cursor.fetchone()[0])
        oversold = max(0, held_rows - capacity, taken - capacity)
        attempts_per_s = len(phones) / wall

        # Pay for every granted hold through the sandbox cashier; the worker delivers the notifications.
        def pay(job: tuple[Phone, int]) -> int:
            phone, booking_id = job
            status, body, _ = phone.post_json(
                f"/api/v1/bookings/{booking_id}/payments/", {"channel": "wechatpay"}
            )
            if status != 201:
                return status
            return phone.post_form(body["pay_url"], {"action": "pay"})

        pay_start = time.perf_counter()
        # Few payers at once: each payment makes gunicorn call the sandbox gateway on itself, and a server
        # whose every thread waits on itself would stall (a real gateway is another host).
        pay_statuses, _ = _fire(min(12, max(1, len(granted))), granted, pay)
        booked = 0
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with psycopg2.connect(_dsn(env["DATABASE_URL"])) as conn, conn.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM reservations_booking WHERE slot_id = %s AND status = 'booked'",
                    (plan["slot"],),
                )
                booked = int(cursor.fetchone()[0])
            if booked >= len(granted):
                break
            time.sleep(0.5)
        pay_wall = time.perf_counter() - pay_start
    finally:
        for proc in (server, worker):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in (server, worker):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

        server_log.close()

    # The raw SQL ceiling runs once the app's processes (and their database connections) are gone.
    ceiling, raw_granted, raw_latencies = raw_sql_ceiling(
        _dsn(env["DATABASE_URL"]), args.clients, len(phones), args.capacity
    )
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    print(
        f"surge: {len(phones)} holds fired by {args.clients} concurrent clients at one slice of "
        f"{args.capacity} (gunicorn {args.workers} workers x {args.threads} threads, PostgreSQL, Redis)"
    )
    print(
        f"  holds granted: {len(granted)} (must be {args.capacity}); database: taken {taken}, "
        f"held rows {held_rows}; oversold: {oversold} (must be 0)"
    )
    print(f"  answers: {dict(statuses)}, refusals {dict(codes)}")
    print(
        f"  attempts per second: {attempts_per_s:.0f}; "
        f"latency p50 {1000 * p50:.0f} ms, p99 {1000 * p99:.0f} ms "
        f"(target p99 < 1000 ms)"
    )
    print(
        f"  raw SQL ceiling (psycopg2, same transaction, {args.clients} threads): {ceiling:.0f} attempts/s, "
        f"granted {raw_granted}, p99 {1000 * percentile(raw_latencies, 0.99):.1f} ms"
    )
    print(f"  ratio HTTP / raw SQL: {attempts_per_s / ceiling:.1%} (target >= 20%)")
    print(
        f"  paying: {Counter(pay_statuses)} cashier answers; {booked}/{len(granted)} booked after "
        f"{pay_wall:.1f} s (signed notifications delivered by the worker)"
    )
    ok = len(granted) == args.capacity and oversold == 0 and booked == len(granted)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
