"""What the benchmarks share: a free port on 127.0.0.1, the benchmark database, a percentile."""

from __future__ import annotations

import socket
import subprocess


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_database_url(env: dict[str, str]) -> str:
    """DATABASE_URL when set, else the local PostgreSQL's database ``hospital_bench`` (created if missing)."""
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"]
    create = [
        "psql",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-q",
        "-c",
        "CREATE DATABASE hospital_bench",
    ]
    subprocess.run(create, capture_output=True, check=False)
    return "postgres://postgres@127.0.0.1:5432/hospital_bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
