"""The Celery application, configured from Django settings (``CELERY_*``).

Scaling past one machine is more workers on more hosts pointed at the same ``REDIS_URL`` and
``DATABASE_URL`` (see README: Operations). Every worker writes a heartbeat that ``/healthz`` reads.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")

app = Celery("hospital")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class HeartbeatStep(bootsteps.StartStopStep):
    """Record that this worker is alive every ``WORKER_HEARTBEAT_SECONDS``, from the worker's own timer.

    A beat-scheduled task would also prove beat was running, but /healthz asks whether a worker is, and a
    stopped beat must not make every worker look dead.
    """

    requires = ("celery.worker.components:Timer",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref: Any = None

    def start(self, parent: Any) -> None:
        from django.conf import settings

        # Local: the Celery app is created before Django is set up, and the heartbeat reads the cache.
        from hospital.health import worker_heartbeat_record

        hostname = getattr(parent, "hostname", None) or socket.gethostname()
        worker_heartbeat_record(hostname=hostname)
        self.tref = parent.timer.call_repeatedly(
            settings.WORKER_HEARTBEAT_SECONDS,
            worker_heartbeat_record,
            kwargs={"hostname": hostname},
            priority=10,
        )

    def stop(self, parent: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


app.steps["worker"].add(HeartbeatStep)
