"""The dev runner behind ``make run`` and ``make test``.

``python -m hospital.devserver run``: migrate, load the demo data, start the web server, one Celery worker
and Celery beat, print the URLs and the demo logins, and stop all three on Ctrl-C (or when one of them dies).
``PORT`` (default 8000) and ``HOST`` (default 127.0.0.1) choose where it listens (``make run PORT=8001``);
the payment sandbox's return and notify addresses follow them.

``python -m hospital.devserver exec -- CMD ...``: run one command in the dev environment (used by
``make test``).

The dev environment is: ``DJANGO_DEBUG=true``, ``DEMO_DATA_ALLOWED=true`` and throwaway secrets generated on
first use into ``var/dev.env`` (never committed: ``var/`` is ignored). Anything already set in the
environment wins, so ``DATABASE_URL`` and ``REDIS_URL`` switch the runner to PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 10


_DEV_SECRET_MAKERS = {
    "SECRET_KEY": lambda: f"dev-only-{secrets.token_urlsafe(48)}",
    "FIELD_ENCRYPTION_KEYS": lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    "BLIND_INDEX_KEY": lambda: secrets.token_urlsafe(32),
    "CARD_TOKEN_SIGNING_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    "WECHAT_APP_SECRET": lambda: secrets.token_hex(16),  # the sandbox's WeChat OAuth checks it
}


def _dev_secrets(path: Path) -> dict[str, str]:
    """Read the throwaway dev secrets, creating missing ones (kept, so encrypted demo data stays readable)."""
    values = _read_env_file(path) if path.exists() else {}
    missing = {key: make() for key, make in _DEV_SECRET_MAKERS.items() if key not in values}
    if missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.writelines(f"{key}={value}\n" for key, value in missing.items())
        path.chmod(0o600)
        values.update(missing)
    return values


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def dev_environment() -> dict[str, str]:
    """The environment for dev processes: the caller's, completed with dev defaults."""
    env = dict(os.environ)
    var_dir = Path(env.get("HOSPITAL_VAR_DIR") or ROOT / "var")
    defaults = {"DJANGO_DEBUG": "true", "DEMO_DATA_ALLOWED": "true", "HOSPITAL_VAR_DIR": str(var_dir)}
    defaults.update(_dev_secrets(ROOT / "var" / "dev.env"))
    for key, value in defaults.items():
        if not env.get(key):
            env[key] = value
    # kombu's filesystem transport needs its folders to exist before the first message.
    for sub in ("broker/queue", "broker/control", "broker/processed", "results", "cache", "media", "static"):
        (var_dir / sub).mkdir(parents=True, exist_ok=True)
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def _wait_until_up(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - a fixed http://127.0.0.1 URL
                return True
        except urllib.error.HTTPError:
            return True  # it answered (503 while the worker warms up is still "up")
        except OSError:
            time.sleep(0.3)
    return False


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in processes.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in processes.values():
        remaining = max(0.1, deadline - time.monotonic())
        try:
            proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_environment(host: str, port: int) -> dict[str, str]:
    """The dev environment of ``make run`` on ``host:port``: the payment gateway's return and notify
    addresses (PUBLIC_BASE_URL) follow the port, unless PUBLIC_BASE_URL is set explicitly (a tunnel, say)."""
    env = dev_environment()
    if not env.get("PUBLIC_BASE_URL"):
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a name to reach it by
        env["PUBLIC_BASE_URL"] = f"http://{shown}:{port}"
    return env


def run(host: str, port: int) -> int:
    env = run_environment(host, port)
    print("Migrating the database and loading the demo data ...", flush=True)
    _manage(env, "migrate", "--noinput", "-v", "0")
    demo = _manage(env, "seed_demo")
    celery = [sys.executable, "-m", "celery", "-A", "hospital"]
    commands = {
        "web": [sys.executable, str(ROOT / "manage.py"), "runserver", f"{host}:{port}"],
        "worker": [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2", "--hostname", "dev@%h"],
        "beat": [*celery, "beat", "--loglevel", "INFO"],
    }
    # Each child gets its own process group, so stopping it also stops what it started (pool processes,
    # the runserver reloader), and the terminal's Ctrl-C reaches us first.
    processes = {
        name: subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
        for name, cmd in commands.items()
    }
    stopping = False

    def _on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    base = f"http://{host}:{port}"
    if _wait_until_up(f"{base}/healthz", 60):
        print(
            "\n".join(
                [
                    "",
                    f"  Outpatient platform running at {base}/",
                    f"  Admin:        {base}/admin/",
                    f"  API docs:     {base}/api/docs/",
                    f"  Health:       {base}/healthz",
                    f"  Patient sign-in: {base}/accounts/login/  (mobile + SMS code, shown on the page here)",
                    f"                   {base}/accounts/login/password/  (mobile + password)",
                    f"  Front desk scan: {base}/accounts/desk/",
                    f"  Staff sign-in:   {base}/accounts/staff-login/  (username; admin also at /admin/)",
                    demo.rstrip(),
                    "  Press Ctrl-C to stop the web server, the worker and beat.",
                    "",
                ]
            ),
            flush=True,
        )
    exit_code = 0
    while not stopping:
        for name, proc in processes.items():
            if proc.poll() is not None:
                print(f"{name} exited with status {proc.returncode}; stopping everything.", flush=True)
                exit_code = 1
                stopping = True
                break
        time.sleep(0.5)
    _stop(processes)
    print("Stopped.", flush=True)
    return exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hospital.devserver", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser(
        "run", help="start web, worker and beat (PORT=8001 make run, or make run PORT=8001, for another port)"
    )
    run_parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    run_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    exec_parser = sub.add_parser("exec", help="run a command in the dev environment")
    exec_parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.host, args.port)
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        parser.error("exec needs a command")
    return subprocess.run(command, cwd=ROOT, env=dev_environment(), check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
