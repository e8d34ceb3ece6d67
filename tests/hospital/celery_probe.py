"""Tasks that only the worker tests load (``celery worker -I tests.hospital.celery_probe``)."""

from __future__ import annotations

import os
import time

import redis

from hospital.celery import app


@app.task(name="probe.add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="probe.count_deliveries")
def count_deliveries(key: str, block_first_s: float) -> int:
    """Count each delivery in Redis; the first one blocks so the test can kill its worker mid-run."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    delivery = int(client.incr(f"{key}:deliveries"))
    client.set(f"{key}:pid:{delivery}", os.getpid())
    if delivery == 1:
        time.sleep(block_first_s)
    client.set(f"{key}:done", delivery)
    return delivery
