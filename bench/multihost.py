"""The morning release on several hosts: network namespaces on this machine play a load balancer, two web
hosts, PgBouncer, PostgreSQL, Redis, two Celery worker hosts and beat; the surge runs against the balancer.

Run as root (it creates network namespaces): ``sudo .venv/bin/python bench/multihost.py`` (``--patients 80
--capacity 30`` is the CI variant, about two minutes). See docs/deploy.md for the layout.

Every host is a network namespace wired to one bridge, and the bridge lives in a namespace of its own too:
the private addresses (10.231.0.0/24 by default) exist only inside namespaces this script creates, and no
packet leaves the machine. Each host runs the same processes a real host would (haproxy, gunicorn,
pgbouncer, postgres, redis-server, celery worker, celery beat). PostgreSQL is a throwaway cluster of its own
(initdb into a temporary folder, run as the ``postgres`` user); the machine's own servers are never touched.

What it checks and prints:
1. holds per second through the balancer with one web host, then with two (every attempt wins);
2. a session signed in once is valid on either web host, and the shield's "slice full" hint written by one
   host is read by the other (shared Redis);
3. a surge of patients at fewer numbers during which one web host is killed, then paying for every granted
   hold while one worker host is killed: no oversell, every granted (201) hold is in the database, every paid
   hold ends booked (the dead worker's tasks are delivered again after the broker's visibility timeout);
4. PostgreSQL's peak number of client connections (bounded by PgBouncer's pool).

It always cleans up (its namespaces, every process in them, the temporary folder), also on Ctrl-C, and the
whole run is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._local import percentile  # noqa: E402
from bench.booking_surge import (  # noqa: E402
    Phone,
    _fire_requests,
    give_back,
    hold_requests,
    load,
    pay_all,
    seed_script,
    slot_state,
)
from hospital.devserver import dev_environment  # noqa: E402

PG_BIN = (
    Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1])
    if Path("/usr/lib/postgresql").exists()
    else None
)

# Host name -> last byte of its address on the bridge.
HOSTS = {
    "lb": 2,
    "web1": 11,
    "web2": 12,
    "db": 20,
    "pgbouncer": 21,
    "redis": 30,
    "worker1": 41,
    "worker2": 42,
    "beat": 43,
    "client": 50,
}
POOL_SIZE = 20  # PgBouncer's server connections to PostgreSQL, whatever the number of web threads


class Cluster:
    """The namespaces, their processes and the temporary folder; ``close()`` removes all of it."""

    def __init__(self, subnet: str, work: Path) -> None:
        self.subnet = subnet  # e.g. "10.231.0"
        self.tag = f"hm{os.getpid() % 100000}"
        self.switch = f"{self.tag}-sw"
        self.work = work
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.namespaces: list[str] = []

    def ns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def ip(self, host: str) -> str:
        return f"{self.subnet}.{HOSTS[host]}"

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    def build(self) -> None:
        """A bridge in its own namespace and one namespace per host with a veth into it."""
        self._ip("netns", "add", self.switch)
        self.namespaces.append(self.switch)
        self._ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        self._ip("-n", self.switch, "link", "set", "br0", "up")
        self._ip("-n", self.switch, "link", "set", "lo", "up")
        for host in HOSTS:
            name = self.ns(host)
            self._ip("netns", "add", name)
            self.namespaces.append(name)
            port = f"v-{host}"[:15]
            self._ip(
                "-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name
            )
            self._ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
            self._ip("-n", name, "addr", "add", f"{self.ip(host)}/24", "dev", "eth0")
            self._ip("-n", name, "link", "set", "eth0", "up")
            self._ip("-n", name, "link", "set", "lo", "up")

    def start(
        self,
        name: str,
        host: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        user: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` on ``host`` (in its namespace), logging to the work folder."""
        prefix = ["ip", "netns", "exec", self.ns(host)]
        if user:
            prefix += ["runuser", "-u", user, "--"]
        log = (self.work / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [*prefix, *argv], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = proc
        return proc

    def run(self, host: str, argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> str:
        done = subprocess.run(
            ["ip", "netns", "exec", self.ns(host), *argv],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{argv[:3]} on {host} failed: {done.stderr[-2000:]}")
        return done.stdout

    def kill_host(self, host: str) -> None:
        """Pull the plug: SIGKILL every process in the host's namespace (no graceful shutdown)."""
        pids = subprocess.run(["ip", "netns", "pids", self.ns(host)], capture_output=True, text=True).stdout
        for pid in pids.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)

    def close(self) -> None:
        for name in reversed(self.namespaces):
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
            for pid in pids.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for name in reversed(self.namespaces):
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
            for pid in pids.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        shutil.rmtree(self.work, ignore_errors=True)


def wait_port(cluster: Cluster, host: str, port: int, timeout_s: float = 60) -> None:
    """Wait until ``host:port`` accepts connections, probed from the client host."""
    probe = (
        "import socket,sys,time\n"
        f"end=time.monotonic()+{timeout_s}\n"
        "while time.monotonic()<end:\n"
        "    try:\n"
        f"        socket.create_connection(('{cluster.ip(host)}',{port}),timeout=1).close(); sys.exit(0)\n"
        "    except OSError: time.sleep(0.2)\n"
        "sys.exit(1)\n"
    )
    try:
        cluster.run("client", [sys.executable, "-c", probe], timeout=timeout_s + 5)
    except RuntimeError:
        raise RuntimeError(f"{host}:{port} did not come up; see {cluster.work}") from None


def start_postgres(cluster: Cluster) -> None:
    assert PG_BIN is not None
    data = cluster.work / "pgdata"
    data.mkdir()
    postgres = pwd.getpwnam("postgres")
    os.chown(cluster.work, postgres.pw_uid, postgres.pw_gid)
    os.chown(data, postgres.pw_uid, postgres.pw_gid)
    subprocess.run(
        ["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U",
         "postgres", "--no-sync", "-E", "UTF8", "--locale", "C"],
        check=True, capture_output=True,
    )  # fmt: skip
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {cluster.subnet}.0/24 trust\n")  # only the namespaces' private network
    cluster.start(
        "postgres",
        "db",
        [str(PG_BIN / "postgres"), "-D", str(data), "-c", f"listen_addresses={cluster.ip('db')}",
         "-c", "port=5432", "-c", f"unix_socket_directories={data}", "-c", "max_connections=100",
         "-c", "timezone=UTC", "-c", "shared_buffers=64MB"],
        user="postgres",
    )  # fmt: skip
    wait_port(cluster, "db", 5432)
    cluster.run(
        "client", ["psql", "-h", cluster.ip("db"), "-U", "postgres", "-qc", "CREATE DATABASE hospital"]
    )


def start_pgbouncer(cluster: Cluster) -> None:
    folder = cluster.work / "pgbouncer"
    folder.mkdir()
    (folder / "userlist.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"hospital = host={cluster.ip('db')} port=5432 dbname=hospital user=postgres\n"
        "[pgbouncer]\n"
        f"listen_addr = {cluster.ip('pgbouncer')}\nlisten_port = 6432\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'userlist.txt'}\n"
        "pool_mode = transaction\nmax_client_conn = 4000\n"
        f"default_pool_size = {POOL_SIZE}\nmax_db_connections = {POOL_SIZE}\nreserve_pool_size = 0\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"pidfile = {folder / 'pgbouncer.pid'}\n"
    )
    postgres = pwd.getpwnam("postgres")
    for path in (folder, folder / "userlist.txt", folder / "pgbouncer.ini"):
        os.chown(path, postgres.pw_uid, postgres.pw_gid)
    cluster.start("pgbouncer", "pgbouncer", ["pgbouncer", str(folder / "pgbouncer.ini")], user="postgres")
    wait_port(cluster, "pgbouncer", 6432)


def start_redis(cluster: Cluster) -> None:
    cluster.start(
        "redis",
        "redis",
        ["redis-server", "--bind", cluster.ip("redis"), "--port", "6379", "--save", "", "--appendonly", "no",
         "--protected-mode", "no", "--dir", str(cluster.work)],
    )  # fmt: skip
    wait_port(cluster, "redis", 6379)


def haproxy_config(cluster: Cluster) -> str:
    return (
        "global\n  maxconn 8192\n"
        f"  stats socket {cluster.work / 'haproxy.sock'} mode 600 level admin\n"
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 120s\n  timeout server 120s\n"
        "  option http-keep-alive\n  option redispatch\n"
        # A request is tried on the other web host only when it never reached the first one (a connection
        # refused or reset before sending): a hold is never sent twice by the balancer.
        "  retries 2\n  retry-on conn-failure\n"
        f"frontend web\n  bind {cluster.ip('lb')}:80\n  default_backend app\n"
        "backend app\n  balance roundrobin\n"
        "  http-response set-header X-Served-By %s\n"
        f"  server web1 {cluster.ip('web1')}:8000 check inter 300 fall 1 rise 2\n"
        f"  server web2 {cluster.ip('web2')}:8000 check inter 300 fall 1 rise 2\n"
    )


def app_env(cluster: Cluster, base_env: dict[str, str], *, visibility_s: int) -> dict[str, str]:
    """The environment every application host gets: the same secrets, database through PgBouncer, Redis."""
    env = dict(base_env)
    env.update(
        DATABASE_URL=f"postgres://postgres@{cluster.ip('pgbouncer')}:6432/hospital",
        DATABASE_TRANSACTION_POOLING="true",
        DATABASE_CONN_MAX_AGE="60",
        REDIS_URL=f"redis://{cluster.ip('redis')}:6379/0",
        PUBLIC_BASE_URL=f"http://{cluster.ip('lb')}",
        ALLOWED_HOSTS=",".join(cluster.ip(host) for host in ("lb", "web1", "web2")) + ",localhost",
        PAYMENT_SANDBOX="true",
        ALLOW_SANDBOX_BACKENDS="true",
        DJANGO_DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
        HOSPITAL_VAR_DIR=str(cluster.work / "var"),
        CELERY_VISIBILITY_TIMEOUT=str(visibility_s),
    )
    env.pop("HOLD_SHIELD", None)
    return env


def start_web(cluster: Cluster, host: str, env: dict[str, str], workers: int, threads: int) -> None:
    cluster.start(
        host,
        host,
        [sys.executable, "-m", "gunicorn", "hospital.wsgi", "--bind", f"{cluster.ip(host)}:8000",
         "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
         "--log-level", "warning", "--backlog", "4096"],
        env=env,
    )  # fmt: skip


def start_worker(cluster: Cluster, host: str, env: dict[str, str]) -> None:
    cluster.start(
        host,
        host,
        [sys.executable, "-m", "celery", "-A", "hospital", "worker", "--loglevel", "WARNING",
         "--concurrency", "2", "--hostname", f"{host}@%h", "--without-gossip", "--without-mingle"],
        env=env,
    )  # fmt: skip


class ConnectionWatch:
    """Samples PostgreSQL's client connections (pg_stat_activity) every 100 ms in a thread; keeps the peak."""

    def __init__(self, dsn: str, pooler: str) -> None:
        self.dsn, self.pooler = dsn, pooler
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.closing(psycopg2.connect(self.dsn)) as conn:
            conn.autocommit = True
            with conn.cursor() as cursor:
                while not self._stop.is_set():
                    # Every application process reaches PostgreSQL through PgBouncer; the measuring client's
                    # own short look-ups come straight from the client host and are left out.
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                        "AND client_addr = %s",
                        (self.pooler,),
                    )
                    self.peak = max(self.peak, int(cursor.fetchone()[0]))
                    self._stop.wait(0.1)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def surge_through(
    base: str, clients: int, phones: list[tuple[Phone, int]], slot_id: int
) -> tuple[list[Any], float]:
    return asyncio.run(_fire_requests(base, clients, hold_requests(phones, slot_id)))


def hold_direct(host_ip: str, phone: Phone, patient_id: int, slot_id: int) -> tuple[int, bool]:
    """One hold sent straight to a web host (not through the balancer): status, answered by the shield."""
    answers, _ = asyncio.run(
        _fire_requests(f"http://{host_ip}:8000", 1, hold_requests([(phone, patient_id)], slot_id))
    )
    status, _, _, shielded = answers[0]
    return status, shielded


def signed_in_on(host_ip: str, phone: Phone) -> int:
    request = urllib.request.Request(
        f"http://{host_ip}:8000/api/v1/me/", headers={"Cookie": f"sessionid={phone.session_key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def preflight() -> str | None:
    """Why this machine cannot run it, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "haproxy", "pgbouncer", "redis-server", "runuser", "psql"):
        if shutil.which(tool) is None:
            return f"needs {tool} (apt-get install haproxy pgbouncer redis-server postgresql)"
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        return "needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/initdb)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "needs the postgres system user"
    return None


def client_main(args: argparse.Namespace) -> int:
    """The measuring side, run inside the client host's namespace (see ``main``)."""
    plan = json.loads(Path(args.plan).read_text())
    base = plan["base"]
    dsn_direct = plan["dsn_direct"]
    phones = [(Phone(base, key), patient_id) for key, patient_id in plan["clients"]]
    slots = plan["slots"]
    figures: dict[str, Any] = {}
    problems: list[str] = []
    sock = plan["haproxy_socket"]

    def lb(command: str) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(sock)
            conn.sendall(command.encode() + b"\n")
            while conn.recv(65536):
                pass

    def warm() -> None:
        asyncio.run(
            _fire_requests(base, args.clients, [("GET", "/api/v1/departments/", b"", {})] * args.clients * 4)
        )

    with ConnectionWatch(dsn_direct, plan["pooler"]) as watch:
        # 1. Holds per second with one web host, then with two (every attempt wins: slices of len(phones)).
        for phase, hosts in ((0, 1), (1, 2)):
            lb("disable server app/web2" if hosts == 1 else "enable server app/web2")
            time.sleep(1.0)
            warm()
            answers, wall = surge_through(base, args.clients, phones, slots[phase])
            granted = sum(1 for status, *_ in answers if status == 201)
            taken, capacity, rows = slot_state(dsn_direct, slots[phase])
            latencies = [seconds for status, _, seconds, _ in answers if status == 201]
            figures[f"{hosts} web host(s)"] = (granted / wall, granted, len(answers), latencies)
            if rows != granted or taken > capacity:
                problems.append(
                    f"phase {hosts} hosts: {granted} granted, {rows} rows, taken {taken}/{capacity}"
                )
            give_back(dsn_direct, slots[phase])

        # 2. One session, either host; the shield's hint written by one host read by the other.
        (first, first_patient), (second, second_patient), (third, third_patient) = phones[:3]
        sessions_ok = all(signed_in_on(plan["web"][host], first) == 200 for host in ("web1", "web2"))
        hint_slot = slots[2]
        won = hold_direct(plan["web"]["web1"], first, first_patient, hint_slot)
        refused = hold_direct(plan["web"]["web1"], second, second_patient, hint_slot)
        shared = hold_direct(plan["web"]["web2"], third, third_patient, hint_slot)
        hint_shared = won[0] == 201 and refused[0] == 409 and shared == (409, True)
        give_back(dsn_direct, hint_slot)
        figures["sessions"] = sessions_ok
        figures["hint"] = (won, refused, shared)
        if not sessions_ok:
            problems.append("a signed-in session was refused by one of the web hosts")
        if not hint_shared:
            problems.append(f"shield hint not shared across hosts: {won}, {refused}, {shared}")

        # 3. Fewer numbers than patients; web2 is killed mid-surge, worker2 mid-payment.
        capacity = args.capacity
        killer = threading.Timer(args.kill_after, lambda: Path(plan["kill_fifo"]).write_text("web2\n"))
        killer.start()
        answers, wall = surge_through(base, args.clients, phones, slots[3])
        killer.join()
        statuses = Counter(status for status, *_ in answers)
        granted_ids = [
            (phones[i][0], body["id"]) for i, (status, body, _, _) in enumerate(answers) if status == 201
        ]
        taken, slot_capacity, rows = slot_state(dsn_direct, slots[3])
        with contextlib.closing(psycopg2.connect(dsn_direct)) as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM reservations_booking "
                "WHERE id = ANY(%s) AND status IN ('held', 'booked')",
                ([booking_id for _, booking_id in granted_ids],),
            )
            persisted = int(cursor.fetchone()[0])
        oversold = max(0, rows - slot_capacity, taken - slot_capacity)
        figures["failover surge"] = (statuses, len(granted_ids), persisted, rows, taken, slot_capacity, wall)
        if oversold or persisted != len(granted_ids) or rows != taken:
            problems.append(
                f"failover surge: {len(granted_ids)} granted, {persisted} persisted, rows {rows}, "
                f"taken {taken}"
            )
        worker_killer = threading.Timer(
            args.kill_after, lambda: Path(plan["kill_fifo"]).write_text("worker2\n")
        )
        worker_killer.start()
        pay_start = time.perf_counter()
        pay_statuses, unbooked = pay_all(
            base, dsn_direct, granted_ids, payers=8, wait_s=args.visibility * 3 + 60
        )
        pay_wall = time.perf_counter() - pay_start
        worker_killer.join()
        figures["paying"] = (pay_statuses, len(granted_ids), unbooked, pay_wall)
        # A hold is "accepted" when the patient got 201; it is processed when its payment books it. A payment
        # the cashier refused (the web host died under it) leaves the hold held, never lost.
        with contextlib.closing(psycopg2.connect(dsn_direct)) as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT b.id FROM reservations_booking b JOIN reservations_payment p ON p.booking_id = b.id "
                "WHERE b.id = ANY(%s) AND p.status = 'paid' AND b.status <> 'booked'",
                ([booking_id for _, booking_id in granted_ids],),
            )
            paid_not_booked = [row[0] for row in cursor.fetchall()]
        figures["paid not booked"] = paid_not_booked
        if unbooked or paid_not_booked:
            problems.append(
                f"{len(unbooked)} granted holds not booked; paid but not booked: {paid_not_booked}"
            )
    figures["peak connections"] = watch.peak
    if watch.peak > POOL_SIZE:
        problems.append(
            f"PostgreSQL saw {watch.peak} client connections, more than PgBouncer's pool {POOL_SIZE}"
        )

    print(f"multi-host surge: {len(phones)} patients, {args.clients} clients through haproxy")
    for hosts in (1, 2):
        rate, granted, attempts, latencies = figures[f"{hosts} web host(s)"]
        print(
            f"  {hosts} web host(s): {rate:.0f} holds/s ({granted}/{attempts} granted, every attempt wins), "
            f"granted p50 {1000 * percentile(latencies, 0.5):.0f} ms, "
            f"p99 {1000 * percentile(latencies, 0.99):.0f} ms"
        )
    print(f"  a session signed in once is valid on web1 and web2: {figures['sessions']}")
    won, refused, shared = figures["hint"]
    print(
        f"  shield hint shared: web1 grants the last number ({won[0]}), web1 finds it full ({refused[0]}), "
        f"web2 answers from the shared hint before Django ({shared[0]}, shield: {shared[1]})"
    )
    statuses, granted, persisted, rows, taken, slot_capacity, wall = figures["failover surge"]
    print(
        f"  failover surge ({len(phones)} patients at {slot_capacity} numbers, web2 killed after "
        f"{args.kill_after:.1f} s): answers {dict(statuses)} in {wall:.1f} s; granted {granted}, in the "
        f"database {persisted}, held rows {rows}, taken {taken}; oversold "
        f"{max(0, rows - slot_capacity, taken - slot_capacity)}"
    )
    pay_statuses, granted, unbooked, pay_wall = figures["paying"]
    print(
        f"  paying every granted hold (worker2 killed after {args.kill_after:.1f} s, visibility timeout "
        f"{args.visibility} s): cashier answers {dict(pay_statuses)}; "
        f"{granted - len(unbooked)}/{granted} booked "
        f"after {pay_wall:.1f} s; paid but not booked: {len(figures['paid not booked'])}"
    )
    print(f"  PostgreSQL client connections, peak: {watch.peak} (PgBouncer pool {POOL_SIZE})")
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=600)
    parser.add_argument("--capacity", type=int, default=150, help="numbers in the failover surge's slice")
    parser.add_argument("--clients", type=int, default=48)
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn processes per web host")
    parser.add_argument("--web-threads", type=int, default=8)
    parser.add_argument("--kill-after", type=float, default=0.5, help="seconds into the surge / payments")
    parser.add_argument("--visibility", type=int, default=10, help="broker visibility timeout, seconds")
    parser.add_argument("--subnet", default="10.231.0", help="a private /24 used only inside the namespaces")
    parser.add_argument("--timeout", type=int, default=900, help="the whole run, seconds")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # internal: the measuring side's plan file
    args = parser.parse_args()
    if args.client:
        args.plan = args.client
        return client_main(args)
    why = preflight()
    if why:
        print(f"multihost: cannot run here: {why}", file=sys.stderr)
        return 77
    print(f"multihost: {load()} at the start", flush=True)
    started = time.monotonic()
    cluster = Cluster(args.subnet, Path(tempfile.mkdtemp(prefix="hospital-multihost-")))
    print(f"multihost: the hosts are the network namespaces {cluster.tag}-*", flush=True)

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(args.timeout)
    try:
        return _run(cluster, args, started)
    except KeyboardInterrupt:
        print(f"multihost: stopped (timeout {args.timeout} s or a signal); logs were in {cluster.work}")
        return 2
    finally:
        signal.alarm(0)
        keep = os.environ.get("MULTIHOST_KEEP_LOGS")
        if keep:
            shutil.copytree(
                cluster.work, keep, dirs_exist_ok=True, ignore=shutil.ignore_patterns("pgdata", "*.sock")
            )
        cluster.close()
        print(
            f"multihost: cleaned up ({len(cluster.namespaces)} namespaces) "
            f"after {time.monotonic() - started:.0f} s"
        )


def _run(cluster: Cluster, args: argparse.Namespace, started: float) -> int:
    cluster.build()
    start_postgres(cluster)
    start_pgbouncer(cluster)
    start_redis(cluster)
    base_env = dev_environment()
    for key in ("DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL", "DJANGO_SETTINGS_MODULE"):
        base_env.pop(key, None)
    env = app_env(cluster, base_env, visibility_s=args.visibility)
    Path(env["HOSPITAL_VAR_DIR"]).mkdir()
    dev_environment_dirs(Path(env["HOSPITAL_VAR_DIR"]))
    direct = f"postgres://postgres@{cluster.ip('db')}:5432/hospital"
    admin_env = {**env, "DATABASE_URL": direct, "DATABASE_TRANSACTION_POOLING": "false"}
    cluster.run("client", [sys.executable, "manage.py", "migrate", "-v", "0"], env=admin_env, timeout=600)
    cluster.run(
        "client", [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=admin_env
    )
    print(
        f"multihost: database, PgBouncer and Redis up, migrated in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    for host in ("web1", "web2"):
        start_web(cluster, host, env, args.web_workers, args.web_threads)
    for host in ("worker1", "worker2"):
        start_worker(cluster, host, env)
    cluster.start(
        "beat", "beat",
        [sys.executable, "-m", "celery", "-A", "hospital", "beat", "--loglevel", "WARNING",
         "--schedule", str(cluster.work / "celerybeat-schedule")],
        env=env,
    )  # fmt: skip
    (cluster.work / "haproxy.cfg").write_text(haproxy_config(cluster))
    cluster.start("haproxy", "lb", ["haproxy", "-f", str(cluster.work / "haproxy.cfg"), "-db"])
    # Seeding runs on the client host, straight to PostgreSQL, while the web hosts start.
    seed_start = time.monotonic()
    plan = seed_in(cluster, admin_env, patients=args.patients, capacity=args.capacity)
    print(
        f"multihost: seeded {args.patients} signed-in patients in {time.monotonic() - seed_start:.0f} s",
        flush=True,
    )
    for host in ("web1", "web2"):
        wait_port(cluster, host, 8000, timeout_s=120)
    wait_port(cluster, "lb", 80)
    plan.update(
        base=f"http://{cluster.ip('lb')}",
        dsn_direct=f"host={cluster.ip('db')} port=5432 dbname=hospital user=postgres",
        haproxy_socket=str(cluster.work / "haproxy.sock"),
        pooler=cluster.ip("pgbouncer"),
        web={host: cluster.ip(host) for host in ("web1", "web2")},
        kill_fifo=str(cluster.work / "kill"),
    )
    plan_path = cluster.work / "plan.json"
    plan_path.write_text(json.dumps(plan))
    kills = KillWatcher(cluster, cluster.work / "kill")
    with kills:
        client = subprocess.run(
            ["ip", "netns", "exec", cluster.ns("client"), sys.executable, str(Path(__file__).resolve()),
             "--client", str(plan_path), "--clients", str(args.clients), "--capacity", str(args.capacity),
             "--kill-after", str(args.kill_after), "--visibility", str(args.visibility)],
            cwd=ROOT, env={**env, "DATABASE_URL": direct}, check=False, timeout=args.timeout,
        )  # fmt: skip
    print(f"  hosts killed during the run: {', '.join(kills.killed) or 'none'}")
    print(f"multihost: {load()} at the end")
    return client.returncode


def dev_environment_dirs(var_dir: Path) -> None:
    for sub in ("cache", "media", "static", "sandbox-keys"):
        (var_dir / sub).mkdir(parents=True, exist_ok=True)


def seed_in(cluster: Cluster, env: dict[str, str], *, patients: int, capacity: int) -> dict[str, Any]:
    """Seed on the client host: the signed-in patients, and four slices: two where every attempt wins (one and
    two web hosts), one of a single number (the shared hint), and the failover surge's."""
    script = seed_script(patients=patients, capacities=[patients, patients, 1, capacity])
    out = cluster.run("client", [sys.executable, "manage.py", "shell", "-c", script], env=env, timeout=600)
    return dict(json.loads(out.strip().splitlines()[-1]))


class KillWatcher:
    """The client (inside its namespace) asks for a host to be killed by writing its name to a file; this
    thread, outside, pulls the plug."""

    def __init__(self, cluster: Cluster, path: Path) -> None:
        self.cluster, self.path = cluster, path
        self.killed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.path.exists():
                host = self.path.read_text().strip()
                self.path.unlink()
                if host in ("web2", "worker2") and host not in self.killed:
                    self.cluster.kill_host(host)
                    self.killed.append(host)
            self._stop.wait(0.05)

    def __enter__(self) -> KillWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


if __name__ == "__main__":
    raise SystemExit(main())
