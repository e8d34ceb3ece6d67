"""A full clinic day: 50 sessions of 60 patients each, every patient checked in, every room calling until
the queues are empty; prints check-in and call-next latency (p50, p99) and the board's update delay.

Run: ``.venv/bin/python -m hospital.devserver exec -- .venv/bin/python bench/clinic_day.py`` with
``DATABASE_URL`` (PostgreSQL; else the local ``hospital_bench`` database) and ``REDIS_URL`` set. In-process:
the services themselves, ``--threads`` database connections at once (desks checking in, then every room of
every session calling), on the real database and Redis. Each session is served from ``--rooms`` rooms.

The board's delay is measured as a board would see it: one subscriber per department listens on Redis
pub/sub and, on each message, rebuilds that department's board snapshot from the database; the delay is from
the end of the call (its commit) to the rebuilt snapshot. The baseline, in the same run at the same
concurrency, is a primary-key read of one queue row. Every loop is bounded.
"""

from __future__ import annotations

import argparse
import os
import queue
import secrets
import sys
import threading
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._local import bench_database_url, percentile  # noqa: E402


def _setup() -> None:
    os.environ.setdefault("DATABASE_URL", bench_database_url(dict(os.environ)))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _seed(*, sessions: int, per_session: int) -> list[int]:
    """Departments, doctors, sessions starting in 20 minutes, and ``per_session`` booked patients each."""
    from django.utils import timezone

    from medcard import crypto, roles
    from medcard import services as medcard_services
    from medcard.models import Patient, User
    from medcard.services.accounts import mobile_index
    from reservations.models import Booking, ClinicType, Department, Doctor, Session, Slot

    run = int(time.time())
    account = medcard_services.patient_account_create(
        mobile=f"139{run % 100000000:08d}", password=secrets.token_urlsafe(16)
    )
    if not User.objects.filter(username="bench-doctor").exists():
        medcard_services.staff_create(
            username="bench-doctor", password=secrets.token_urlsafe(16), display_name="b", role=roles.DOCTOR
        )
        medcard_services.staff_create(
            username="bench-desk2",
            password=secrets.token_urlsafe(16),
            display_name="b",
            role=roles.FRONT_DESK,
        )
    clinic_type, _ = ClinicType.objects.get_or_create(
        code="bench", defaults={"name_zh": "普通", "name_en": "General", "fee": Decimal("0")}
    )
    start = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=20)
    session_ids = []
    id_cipher = crypto.encrypt("110101194901010011")
    for s in range(sessions):
        department, _ = Department.objects.get_or_create(
            code=f"bench-{run}-{s % 10}",
            defaults={"name_zh": f"压测科{s % 10}", "name_en": f"Bench {s % 10}"},
        )
        doctor = Doctor.objects.create(
            code=f"bench-{run}-{s}", department=department, name_zh="压测", name_en="B", title="chief"
        )
        session = Session.objects.create(
            department=department, doctor=doctor, clinic_type=clinic_type, fee=Decimal("0"), room=f"{s}诊室",
            date=timezone.localdate(start), half_day="am" if timezone.localtime(start).hour < 12 else "pm",
            starts_at=start, ends_at=start + timedelta(hours=4),
        )  # fmt: skip
        slot = Slot.objects.create(
            session=session,
            starts_at=start,
            ends_at=start + timedelta(hours=4),
            capacity=per_session,
            taken=per_session,
        )
        patients = Patient.objects.bulk_create(
            Patient(
                name=f"压测{s}号{n}", id_type="resident_id", id_number_ciphertext=id_cipher,
                id_number_index=f"bench-{run}-{s}-{n}", sex="M", birth_date=date(1940 + n % 60, 1, 1),
                mobile_ciphertext="", mobile_index=mobile_index(f"138{n:08d}"), verification="verified",
            )
            for n in range(per_session)
        )  # fmt: skip
        Booking.objects.bulk_create(
            Booking(patient=p, account=account, session=session, slot=slot, department=department,
                    visit_date=session.date, fee=Decimal("0"), status=Booking.Status.BOOKED)
            for p in patients
        )  # fmt: skip
        session_ids.append(session.pk)
    return session_ids


def _pool(jobs: list, threads: int) -> list[float]:  # type: ignore[type-arg]
    """Run the callables on ``threads`` threads (one database connection each); their latencies in ms."""
    from django.db import connections

    work: queue.Queue = queue.Queue()  # type: ignore[type-arg]
    for job in jobs:
        work.put(job)
    latencies: list[float] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            while True:
                try:
                    job = work.get_nowait()
                except queue.Empty:
                    return
                started = time.perf_counter()
                job()
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=3600)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--rooms", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    _setup()
    import redis
    from django.conf import settings
    from django.utils import timezone

    from core.errors import AppError
    from medcard.models import User
    from reservations import live, selectors, services
    from reservations.models import Booking, Department, QueueEntry, Session

    print(f"seeding {args.sessions} sessions × {args.patients} patients …", flush=True)
    t0 = time.perf_counter()
    session_ids = _seed(sessions=args.sessions, per_session=args.patients)
    print(f"seeded in {time.perf_counter() - t0:.1f}s", flush=True)
    desk = User.objects.get(username="bench-desk2")
    doctor = User.objects.get(username="bench-doctor")
    bookings = list(
        Booking.objects.filter(session_id__in=session_ids).order_by("id").values_list("pk", flat=True)
    )

    # Boards: one subscriber per department, rebuilding its snapshot on each message.
    delays: list[float] = []
    stop = threading.Event()
    departments = list(Department.objects.filter(sessions__id__in=session_ids).distinct())
    client = redis.Redis.from_url(settings.REDIS_URL)

    def board(department: Department) -> None:
        from django.db import connections

        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(live.channel_for(department.pk))
        try:
            while not stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is None:
                    continue
                import json

                sent = json.loads(message["data"])["at"]
                selectors.board_snapshot(department=department, day=timezone.localdate())
                delays.append((time.time() - sent) * 1000)
        finally:
            pubsub.close()
            connections.close_all()

    boards = [threading.Thread(target=board, args=(d,)) for d in departments]
    for thread in boards:
        thread.start()
    time.sleep(0.5)

    check_in = _pool(
        [lambda pk=pk: services.booking_check_in(staff=desk, booking_id=pk) for pk in bookings], args.threads
    )

    def call(session_id: int, room: str) -> None:
        try:
            entry = services.queue_call_next(doctor=doctor, session_id=session_id, room=room)
        except AppError:
            return
        services.queue_move(actor=doctor, entry_id=entry.pk, action="complete", room=room)

    rooms = [(sid, f"{sid}-{r}室") for sid in session_ids for r in range(args.rooms)]
    calls_per_room = -(-args.patients // args.rooms)
    jobs = [lambda sid=sid, room=room: call(sid, room) for _ in range(calls_per_room) for sid, room in rooms]
    call_next = _pool(jobs, args.threads)
    first = QueueEntry.objects.filter(session_id__in=session_ids).values_list("pk", flat=True).first()
    baseline = _pool([lambda: QueueEntry.objects.get(pk=first) for _ in range(2000)], args.threads)
    time.sleep(1.0)
    stop.set()
    for thread in boards:
        thread.join(timeout=10)

    seen = QueueEntry.objects.filter(session_id__in=session_ids, state="completed").count()
    twice = QueueEntry.objects.filter(session_id__in=session_ids, calls__gt=1).count()
    base50 = percentile(baseline, 0.5)
    shape = f"{args.sessions} sessions × {args.patients} patients, {args.rooms} rooms each"
    print(f"\nclinic day: {shape}, {args.threads} connections")
    print(f"patients seen: {seen} of {len(bookings)}; called more than once: {twice}")
    rows = [("check-in", check_in), ("call next + complete", call_next), ("baseline pk read", baseline)]
    if delays:
        rows.append(("board update delay", delays))
    for name, values in rows:
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        ratio = f"({p50 / base50:5.1f}× baseline)" if name != "board update delay" else ""
        print(f"{name:>22}: n={len(values):5d}  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  {ratio}")
    Session.objects.filter(pk__in=session_ids).update(status="stopped", stopped_reason="bench")


if __name__ == "__main__":
    main()
