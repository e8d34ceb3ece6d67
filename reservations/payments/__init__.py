"""Payment gateways: WeChat Pay API v3 and Alipay adapters, our notification endpoints, and a local sandbox
gateway that plays both providers for development and tests. The interface is in ``base``."""

# Celery's autodiscovery imports only ``<app>.tasks``; ``reservations.tasks`` imports this package, so
# importing the sandbox's task module here is what registers its delivery task in the worker.
from reservations.payments import tasks as _tasks  # noqa: F401
