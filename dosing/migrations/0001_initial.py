# The dosing app's first migration holds no tables: it is the common ancestor that the course and the
# batch-simulation migrations both start from.
from django.db import migrations


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations: list[migrations.operations.base.Operation] = []
