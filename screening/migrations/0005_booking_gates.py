# The screening gate on existing bookings: every booking with a screening case is gated by "screening",
# pending while its case is open, cleared once approved, failed once declined.
from django.db import migrations

OPEN = ["awaiting_upload", "processing", "confirm", "review"]


def forwards(apps, schema_editor):
    Booking = apps.get_model("reservations", "Booking")
    cases = apps.get_model("screening", "ScreeningCase").objects
    for status, gate_status in ((OPEN, "pending"), (["approved"], "cleared"), (["declined"], "failed")):
        ids = cases.filter(status__in=status).values_list("booking_id", flat=True)
        Booking.objects.filter(pk__in=list(ids)).update(gate="screening", gate_status=gate_status)


def backwards(apps, schema_editor):
    apps.get_model("reservations", "Booking").objects.filter(gate="screening").update(gate="", gate_status="")


class Migration(migrations.Migration):
    dependencies = [
        ("screening", "0004_case_review_due_at"),
        ("reservations", "0007_booking_gate"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
