"""Settings of the real Celery workers the screening worker test starts (``DJANGO_SETTINGS_MODULE``).

The application's settings, with three things private to one test run, so that a worker never takes another
run's messages nor remembers another run's notifications: the default queue (``decide_case`` and
``case_notify`` go there; ``screening.extract`` goes to ``SCREENING_OCR_QUEUE`` as in production), the
cache's key prefix (where ``case_notify`` keeps its once-only claims), and a notifier that records each
message in a Redis list the test reads (the sandbox outbox lives in the worker's memory, out of the test's
reach).
"""

import os

from hospital.settings import *  # noqa: F403
from hospital.settings import CACHES

# Read with defaults: pytest imports every module (doctests), this one too, outside any worker.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TEST_WORKER_DEFAULT_QUEUE", "celery")
CACHES = {"default": {**CACHES["default"], "KEY_PREFIX": CELERY_TASK_DEFAULT_QUEUE}}
RESERVATION_NOTIFIERS = ["tests.screening.worker_settings.RedisOutbox"]


class RedisOutbox:
    """A notifier that appends each message, as JSON, to the Redis list ``TEST_WORKER_OUTBOX``."""

    def send(self, *, account_id: int, mobile: str, title: str, text: str, kind: str) -> None:
        import json

        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        message = {"account_id": account_id, "kind": kind, "title": title, "text": text}
        client.rpush(
            os.environ.get("TEST_WORKER_OUTBOX", "test-worker-outbox"),
            json.dumps(message, ensure_ascii=False),
        )
        client.close()
