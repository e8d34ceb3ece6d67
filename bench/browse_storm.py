"""Before 07:00: thousands of patients reload the availability pages and API.

Run: ``.venv/bin/python -m hospital.devserver exec -- .venv/bin/python bench/browse_storm.py`` (PostgreSQL and
Redis as for the surge benchmark). It loads the demo hospital, starts gunicorn (production settings plus one
trivial view, ``/bench/trivial/``, that runs the whole middleware stack and does nothing), and sends
``--requests`` GETs per page from ``--clients`` kept-alive connections to: the trivial view, a department's
page and its availability API, a session's page and its slices API. It runs twice, with the availability
cache on and off (``AVAILABILITY_CACHE_SECONDS=0``), and prints requests per second, p50/p99 and the ratio to
the trivial view measured in the same run. It ends by checking that the counts the API shows equal the
database's. Every loop is bounded; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._local import percentile  # noqa: E402
from bench.booking_surge import (  # noqa: E402
    _fire_requests,
    load,
    production_environment,
    start_app,
    stop_app,
    wait_settled,
    wait_up,
)

PICK = """
import json
from django.utils import timezone
from reservations import discovery
from reservations.models import Department, Session
from reservations.schedules import booking_rule_for, released_through
now = timezone.now()
picked = []
for department in Department.objects.order_by("sort_order", "code"):
    through = released_through(rule=booking_rule_for(department=department), now=now)
    session = (Session.objects.filter(department=department, status="open", date__gt=timezone.localdate(),
                                      date__lte=through).order_by("date", "starts_at").first())
    if session is not None:
        picked.append({"code": department.code, "date": session.date.isoformat(), "session": session.pk})
print(json.dumps(picked[:5]))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="GETs per page and run")
    parser.add_argument("--clients", type=int, default=64)
    # The request pool as docs/deploy.md sets it up, as the surge benchmark runs it: sync, cores + 1.
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) + 1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (gthread: threads)")
    args = parser.parse_args()
    print(f"browse storm: {load()} at the start")
    env, base = production_environment(DJANGO_SETTINGS_MODULE="bench._browse_settings")
    port = int(base.rsplit(":", 1)[1])
    python = sys.executable
    for command in (["migrate", "-v", "0"], ["collectstatic", "--noinput", "-v", "0"], ["seed_demo"]):
        subprocess.run([python, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
    picked = json.loads(
        subprocess.run(
            [python, "manage.py", "shell", "-c", PICK], cwd=ROOT, env=env, check=True, capture_output=True,
            text=True,
        ).stdout.strip().splitlines()[-1]
    )  # fmt: skip
    if not picked:
        print("no released demo session found", file=sys.stderr)
        return 2
    pages = {
        "trivial view": ["/bench/trivial/"],
        "department page": [f"/booking/departments/{p['code']}/?date={p['date']}" for p in picked],
        "availability API": [
            f"/api/v1/departments/{p['code']}/availability/?date={p['date']}" for p in picked
        ],
        "session page": [f"/booking/departments/{p['code']}/sessions/{p['session']}/" for p in picked],
        "slices API": [f"/api/v1/sessions/{p['session']}/slots/" for p in picked],
    }
    headers = {"Accept-Language": "zh-hans"}
    figures: dict[tuple[str, str], tuple[float, float, float, int]] = {}
    log_path = Path(env["HOSPITAL_VAR_DIR"]) / "bench-browse-server.log"
    with log_path.open("wb") as log:
        for label, ttl in (("cache on", "30"), ("cache off", "0")):
            processes = start_app(
                {**env, "AVAILABILITY_CACHE_SECONDS": ttl},
                bind=f"127.0.0.1:{port}",
                workers=args.workers,
                threads=args.threads,
                worker_class=args.worker_class,
                log=log,
                worker_name=f"browse-{port}",
            )
            try:
                wait_up(base)
                wait_settled(processes)
                for page, paths in pages.items():
                    requests = [("GET", paths[n % len(paths)], b"", headers) for n in range(args.requests)]
                    asyncio.run(_fire_requests(base, args.clients, requests[: args.clients * 2]))  # warm
                    answers, wall = asyncio.run(_fire_requests(base, args.clients, requests))
                    seconds = [answer[2] for answer in answers]
                    failed = sum(1 for answer in answers if answer[0] != 200)
                    figures[(label, page)] = (
                        len(answers) / wall,
                        percentile(seconds, 0.5),
                        percentile(seconds, 0.99),
                        failed,
                    )
                if label == "cache on":
                    consistent = check_counts(base, env, picked[0])
            finally:
                stop_app(processes)
    print(
        f"browse storm: {args.requests} GETs per page from {args.clients} kept-alive clients, gunicorn "
        f"{args.worker_class}, {args.workers} workers x {args.threads} threads, PostgreSQL, Redis; "
        f"{len(picked)} departments"
    )
    for (label, page), (rate, p50, p99, failed) in figures.items():
        trivial = figures[(label, "trivial view")][0]
        print(
            f"  [{label}] {page:<17} {rate:6.0f} requests/s ({rate / trivial:6.1%} of the trivial view), "
            f"p50 {1000 * p50:.0f} ms, p99 {1000 * p99:.0f} ms, not 200: {failed}"
        )
    print(f"  counts shown with the cache on equal the database's after a hold and a cancel: {consistent}")
    print(f"browse storm: {load()} at the end")
    return 0 if consistent and not any(f[3] for f in figures.values()) else 1


CHECK = """
import json
from reservations.models import Session
session = Session.objects.get(pk={session})
print(json.dumps(sum(slot.capacity - slot.taken for slot in session.slots.all())))
"""


def check_counts(base: str, env: dict[str, str], picked: dict[str, object]) -> bool:
    """Hold a number in another process (as another web host would), read the API, cancel, read again: the
    API's counts must equal the database's each time."""
    import urllib.request

    def api_count() -> int:
        url = f"{base}/api/v1/sessions/{picked['session']}/slots/"
        with urllib.request.urlopen(url, timeout=10) as response:
            return sum(row["remaining"] for row in json.load(response)["slots"])

    def database_count() -> int:
        code = CHECK.replace("{session}", str(picked["session"]))
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True,
            capture_output=True, text=True,
        )  # fmt: skip
        return int(done.stdout.strip().splitlines()[-1])

    script = f"""
from medcard import services
from medcard.models import User
from reservations import services as booking
from reservations.models import Session
from tests import factories
account = User.objects.get_by_mobile(services.DEMO_PATIENT_MOBILE)
patient = factories.verified_patient_of(account)
for held in account.bookings.filter(status__in=["held", "booked"], session_id={picked["session"]}):
    booking.booking_cancel(account=account, booking_id=held.pk)
slot = next(s for s in Session.objects.get(pk={picked["session"]}).slots.order_by("starts_at") if s.remaining)
made = booking.hold_create(account=account, patient_id=patient.pk, slot_id=slot.pk)
print(made.pk)
"""
    before = api_count()
    ok = before == database_count()
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=False,
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return False
    booking_id = int(done.stdout.strip().splitlines()[-1])
    held = api_count()
    ok = ok and held == database_count() == before - 1
    cancel = (
        "from medcard import services\nfrom medcard.models import User\n"
        "from reservations import services as booking\n"
        "account = User.objects.get_by_mobile(services.DEMO_PATIENT_MOBILE)\n"
        f"booking.booking_cancel(account=account, booking_id={booking_id})\n"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", cancel],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    after = api_count()
    return ok and after == database_count() == before


if __name__ == "__main__":
    raise SystemExit(main())
