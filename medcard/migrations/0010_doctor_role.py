"""The doctor role: doctors run their session's queue from the doctor's console."""

from django.db import migrations


def create_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="doctor")


def remove_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="doctor").delete()


class Migration(migrations.Migration):
    dependencies = [("medcard", "0009_audit_dosing")]

    operations = [migrations.RunPython(create_role, remove_role)]
