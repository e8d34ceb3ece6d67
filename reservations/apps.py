from django.apps import AppConfig


class ReservationsConfig(AppConfig):
    """Departments, doctors, schedules, slots, holds, payments, waitlist, check-in and queues."""

    name = "reservations"
    verbose_name = "Reservations"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from reservations import schedules
        from reservations.models import BookingRule

        post_save.connect(
            schedules.booking_rules_changed, sender=BookingRule, dispatch_uid="booking-rules-saved"
        )
        post_delete.connect(
            schedules.booking_rules_changed, sender=BookingRule, dispatch_uid="booking-rules-deleted"
        )
