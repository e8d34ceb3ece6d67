from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReservationsConfig(AppConfig):
    """Departments, doctors, schedules, slots, holds, payments, waitlist, check-in and queues."""

    name = "reservations"
    verbose_name = _("Reservations")

    def ready(self) -> None:
        # Local: receivers connect when their module loads, which needs the models ready first.
        from reservations import discovery, schedules  # noqa: F401
