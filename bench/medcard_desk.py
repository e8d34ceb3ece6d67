"""Desk look-up latency under 50 concurrent scans, against a real gunicorn server on 127.0.0.1.

Run: ``make bench-desk`` (or ``.venv/bin/python -m hospital.devserver exec -- .venv/bin/python
bench/medcard_desk.py``). It uses ``DATABASE_URL`` when set, else a database ``hospital_bench`` on the local
PostgreSQL (created if missing). It seeds patients with cards and a front-desk account, starts gunicorn, signs
the desk in, then 50 threads each scan ``--scans`` fresh tokens through ``POST /api/v1/desk/lookups/``. In the
same run and at the same concurrency it measures ``GET /api/v1/card-tokens/public-key/`` (no database) as the
baseline, and prints p50/p99 latencies, throughput and the ratio. Every loop is bounded; traffic goes only to
127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import http.cookiejar
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._local import bench_database_url, free_port, percentile  # noqa: E402
from hospital.devserver import dev_environment  # noqa: E402
from medcard import tokens  # noqa: E402 - pure functions; no Django settings are read

SEED = """
from datetime import date
from medcard import roles, services
from medcard.models import Card, User
from tests import factories
if not User.objects.filter(username="bench-desk").exists():
    services.staff_create(username="bench-desk", password="bench-desk-password-1", display_name="bench",
                          role=roles.FRONT_DESK)
have = Card.objects.filter(status="active").count()
for n in range(have, {patients}):
    factories.patient_account(mobile=str(13700000000 + n), name="压测" + str(n))
print(",".join(Card.objects.filter(status="active").values_list("number", flat=True)))
"""


class Desk:
    """A signed-in front-desk session (cookies and CSRF token), shared by the scanning threads."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def sign_in(self, username: str, password: str) -> None:
        self.opener.open(f"{self.base}/accounts/staff-login/", timeout=10).read()
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": self.csrf()}
        ).encode()
        request = urllib.request.Request(f"{self.base}/accounts/staff-login/", data=form, method="POST")
        request.add_header("Referer", f"{self.base}/accounts/staff-login/")
        self.opener.open(request, timeout=10).read()

    def lookup(self, token: str) -> tuple[int, float]:
        body = json.dumps({"token": token}).encode()
        request = urllib.request.Request(f"{self.base}/api/v1/desk/lookups/", data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        request.add_header("X-CSRFToken", self.csrf())
        request.add_header("Referer", f"{self.base}/")
        start = time.perf_counter()
        try:
            with self.opener.open(request, timeout=30) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        return status, time.perf_counter() - start

    def public_key(self) -> tuple[int, float]:
        start = time.perf_counter()
        with self.opener.open(f"{self.base}/api/v1/card-tokens/public-key/", timeout=30) as response:
            response.read()
            return response.status, time.perf_counter() - start


def _run(concurrency: int, per_thread: int, call: object) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for i in range(per_thread):
            status, seconds = call(index, i)  # type: ignore[operator]
            with lock:
                latencies.append(seconds)
                statuses.append(status)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return latencies, statuses, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--scans", type=int, default=20, help="scans per concurrent client")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    args = parser.parse_args()

    env = dev_environment()
    env["DATABASE_URL"] = bench_database_url(env)
    env["DJANGO_DEBUG"] = "true"  # the dev secrets; gunicorn serves the same code as production
    env["LOG_LEVEL"] = "WARNING"
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run(
        [python, "manage.py", "shell", "-c", SEED.replace("{patients}", str(args.patients))],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    cards = seeded.stdout.strip().splitlines()[-1].split(",")
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(env["CARD_TOKEN_SIGNING_KEY"]))

    port = free_port()
    server = subprocess.Popen(
        [python, "-m", "gunicorn", "hospital.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--threads", "8", "--worker-class", "gthread",
         "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/api/v1/card-tokens/public-key/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        desk = Desk(base)
        desk.sign_in("bench-desk", "bench-desk-password-1")
        assert desk.lookup(tokens.token_sign(card_number=cards[0], now=datetime.now(UTC), lifetime_s=60,
                                             private_key=key))[0] == 200  # fmt: skip

        def scan(index: int, i: int) -> tuple[int, float]:
            card = cards[(index * args.scans + i) % len(cards)]
            token = tokens.token_sign(card_number=card, now=datetime.now(UTC), lifetime_s=60, private_key=key)
            return desk.lookup(token)

        _run(args.concurrency, 2, lambda index, i: desk.public_key())  # warm up every worker
        base_lat, base_status, base_wall = _run(
            args.concurrency, args.scans, lambda index, i: desk.public_key()
        )
        scan_lat, scan_status, scan_wall = _run(args.concurrency, args.scans, scan)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    n = args.concurrency * args.scans
    vendor = env["DATABASE_URL"].split("://")[0]
    print(f"desk look-up under {args.concurrency} concurrent scans, {n} scans, gunicorn {args.workers} "
          f"workers x 8 threads, {vendor}, {len(cards)} active cards")  # fmt: skip
    for name, lat, status, wall in (
        ("baseline GET public-key", base_lat, base_status, base_wall),
        ("POST desk/lookups (verify + DB + audit row)", scan_lat, scan_status, scan_wall),
    ):
        ok = sum(1 for s in status if s == 200)
        p50_ms, p99_ms = 1000 * statistics.median(lat), 1000 * percentile(lat, 0.99)
        print(f"  {name}: p50 {p50_ms:.1f} ms, p99 {p99_ms:.1f} ms, "
              f"{len(lat) / wall:.0f} req/s, {ok}/{len(status)} answered 200")  # fmt: skip
    ratio_p50 = statistics.median(scan_lat) / statistics.median(base_lat)
    ratio_p99 = percentile(scan_lat, 0.99) / percentile(base_lat, 0.99)
    print(f"  ratio look-up / baseline: p50 x{ratio_p50:.2f}, p99 x{ratio_p99:.2f}")
    return 0 if all(s == 200 for s in scan_status) else 1


if __name__ == "__main__":
    raise SystemExit(main())
