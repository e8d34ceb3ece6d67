from django.apps import AppConfig


class ReservationsConfig(AppConfig):
    """Departments, doctors, schedules, slots, holds, payments, waitlist, check-in and queues."""

    name = "reservations"
    verbose_name = "Reservations"
