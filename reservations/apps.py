from django.apps import AppConfig


class ReservationsConfig(AppConfig):
    """Departments, doctors, schedules, slots, holds, payments, waitlist, check-in and queues."""

    name = "reservations"
    verbose_name = "Reservations"

    def ready(self) -> None:
        # Local: receivers connect when their module loads, which needs the models ready first.
        from reservations import discovery, schedules  # noqa: F401
