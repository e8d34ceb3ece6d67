"""A real Celery worker in its own process: round trip, and redelivery when the worker dies mid-task.

These tests start ``celery worker`` as a subprocess on a private queue, so they exercise the same settings
(acks late, reject on worker lost, the broker's visibility timeout) that production runs with.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from hospital.devserver import dev_environment
from tests.conftest import redis_url_for_tests, require_or_skip

pytestmark = pytest.mark.worker
ROOT = Path(__file__).resolve().parents[2]


def _wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Workers:
    """Starts workers on one private queue and always stops them (bounded: every wait has a timeout)."""

    include = "tests.hospital.celery_probe"  # the test-only tasks the workers load

    def __init__(self, env: dict[str, str], queue: str) -> None:
        self.env, self.queue = env, queue
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, queues: str = "", *, probes: bool = True, **extra_env: str) -> subprocess.Popen[bytes]:
        """A worker on ``queues`` (default: the private queue); the probe tasks unless ``probes=False``."""
        cmd = [
            sys.executable, "-m", "celery", "-A", "hospital", "worker",
            *(["--include", self.include] if probes else []),
            "--queues", queues or self.queue, "--concurrency", "1",
            "--hostname", f"{self.queue}-{len(self.procs)}@%h", "--without-gossip", "--without-mingle",
            "--loglevel", "WARNING",
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**self.env, **extra_env}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its pool: no warm shutdown, no chance to hand the task back."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def redis_url() -> str:
    url = redis_url_for_tests()
    require_or_skip(url is not None, "no Redis on 127.0.0.1:6379 and no REDIS_URL")
    assert url is not None
    return url


@pytest.fixture
def redis_workers(redis_url: str) -> Iterator[tuple[Workers, Celery, redis.Redis]]:
    queue = f"probe-{uuid.uuid4().hex[:10]}"
    env = {**dev_environment(), "REDIS_URL": redis_url}
    workers = Workers(env, queue)
    client = Celery("probe-client", broker=redis_url, backend=redis_url)
    client.conf.task_default_queue = queue
    store = redis.Redis.from_url(redis_url)
    try:
        yield workers, client, store
    finally:
        workers.stop_all()
        for key in store.scan_iter(f"{queue}*"):
            store.delete(key)
        store.delete(queue)
        client.close()
        store.close()


def test_worker_runs_a_task_and_returns_its_result(
    redis_workers: tuple[Workers, Celery, redis.Redis],
) -> None:
    workers, client, _ = redis_workers
    workers.start()
    result = client.send_task("probe.add", args=(2, 3))
    assert result.get(timeout=60) == 5


def test_task_is_delivered_again_when_its_pool_process_is_killed(
    redis_workers: tuple[Workers, Celery, redis.Redis],
) -> None:
    workers, client, store = redis_workers
    key = workers.queue
    workers.start()
    client.send_task("probe.count_deliveries", args=(key, 120))
    pid = int(_wait_for(lambda: store.get(f"{key}:pid:1"), 60, "the first delivery"))  # type: ignore[arg-type]
    os.kill(pid, signal.SIGKILL)
    # acks_late + reject_on_worker_lost: the main worker process hands the message back at once.
    assert int(_wait_for(lambda: store.get(f"{key}:done"), 60, "the second delivery")) == 2  # type: ignore[arg-type]
    assert int(store.get(f"{key}:deliveries")) == 2  # type: ignore[arg-type]


def test_task_is_delivered_again_when_the_whole_worker_is_killed(
    redis_workers: tuple[Workers, Celery, redis.Redis],
) -> None:
    workers, client, store = redis_workers
    key = workers.queue
    # The broker gives an unacknowledged message back once its visibility timeout has passed, when a worker
    # next scans for such messages (at start, then every ~100 s): short here, an hour in production
    # (CELERY_VISIBILITY_TIMEOUT).
    first = workers.start(CELERY_VISIBILITY_TIMEOUT="3")
    client.send_task("probe.count_deliveries", args=(key, 120))
    _wait_for(lambda: store.get(f"{key}:pid:1"), 60, "the first delivery")
    workers.kill(first)
    assert store.get(f"{key}:done") is None
    time.sleep(4)  # past the visibility timeout: the message now counts as lost
    workers.start(CELERY_VISIBILITY_TIMEOUT="3")
    assert int(_wait_for(lambda: store.get(f"{key}:done"), 90, "redelivery to the new worker")) == 2  # type: ignore[arg-type]


def test_dev_broker_needs_no_server_and_a_separate_worker_runs_the_task(tmp_path: Path) -> None:
    env = {k: v for k, v in dev_environment().items() if k != "REDIS_URL"}
    env["HOSPITAL_VAR_DIR"] = str(tmp_path)
    env = {**dev_environment_for(env)}
    queue = f"probe-{uuid.uuid4().hex[:10]}"
    workers = Workers(env, queue)
    broker_dir = tmp_path / "broker"
    client = Celery("probe-client", broker="filesystem://", backend=f"file://{tmp_path / 'results'}")
    client.conf.broker_transport_options = {
        "data_folder_in": str(broker_dir / "queue"),
        "data_folder_out": str(broker_dir / "queue"),
        "control_folder": str(broker_dir / "control"),
        "processed_folder": str(broker_dir / "processed"),
    }
    client.conf.task_default_queue = queue
    try:
        proc = workers.start()
        result = client.send_task("probe.add", args=(20, 22))
        assert result.get(timeout=60) == 42
        assert proc.poll() is None and proc.pid != os.getpid()
    finally:
        workers.stop_all()
        client.close()


def dev_environment_for(env: dict[str, str]) -> dict[str, str]:
    """Create the broker folders under ``env['HOSPITAL_VAR_DIR']`` as the dev runner does."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return dev_environment()
    finally:
        os.environ.clear()
        os.environ.update(saved)
