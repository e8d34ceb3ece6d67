from django.apps import AppConfig


class ReservationsConfig(AppConfig):
    """Departments, doctors, schedules, slots, holds, payments, waitlist, check-in and queues."""

    name = "reservations"
    verbose_name = "Reservations"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from reservations import discovery, schedules
        from reservations.models import BookingRule, Session, Slot

        post_save.connect(
            schedules.booking_rules_changed, sender=BookingRule, dispatch_uid="booking-rules-saved"
        )
        post_delete.connect(
            schedules.booking_rules_changed, sender=BookingRule, dispatch_uid="booking-rules-deleted"
        )
        # A session or slice saved one by one (the admin, session generation): the cached availability of its
        # department moves on. The services' bulk updates call discovery.availability_changed themselves.
        for model in (Session, Slot):
            for signal, kind in ((post_save, "saved"), (post_delete, "deleted")):
                signal.connect(
                    discovery.availability_saved,
                    sender=model,
                    dispatch_uid=f"availability-{model.__name__}-{kind}",
                )
