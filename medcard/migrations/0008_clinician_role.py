"""The clinician role: screening decisions are made by clinicians, not by the front desk."""

from django.db import migrations


def create_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="clinician")


def remove_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="clinician").delete()


class Migration(migrations.Migration):
    dependencies = [("medcard", "0007_audit_staff_actions")]

    operations = [migrations.RunPython(create_role, remove_role)]
