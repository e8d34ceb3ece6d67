"""Loaded only by the batch worker test (``celery worker --include tests.dosing.batch.batch_worker_probe``).

It wraps the engine's chunk computation in the worker process: every computation is counted in Redis, and
the first computation of chunk ``BATCH_PROBE_BLOCK_CHUNK`` records its process id and then blocks, so the test
can SIGKILL the worker while that chunk is half done.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from dosing.engine import simulate

_real_pta_chunk = simulate.pta_chunk


def _counted_pta_chunk(spec: simulate.PtaSpec, index: int) -> dict[str, Any]:
    key = os.environ["BATCH_PROBE_KEY"]
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    computations = int(client.incr(f"{key}:computed:{index}"))
    result = _real_pta_chunk(spec, index)
    if index == int(os.environ.get("BATCH_PROBE_BLOCK_CHUNK", "-1")) and computations == 1:
        client.set(f"{key}:blocked", os.getpid())
        time.sleep(600)  # killed here, mid-chunk: computed but not stored
    return result


# Only inside the test's workers (they get BATCH_PROBE_KEY): pytest also imports this file, for its doctests,
# and the test process itself must keep the real computation.
if "BATCH_PROBE_KEY" in os.environ:
    simulate.pta_chunk = _counted_pta_chunk
