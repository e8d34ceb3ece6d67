"""On PostgreSQL, make the screening record append-only in the database itself: UPDATE and DELETE of a run,
a review or a field correction raise, whatever code (or person at a SQL prompt) tries."""

from django.db import migrations

TABLES = ("screening_screeningrun", "screening_screeningreview", "screening_fieldcorrection")

FUNCTION = """
CREATE OR REPLACE FUNCTION screening_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only';
END;
$$ LANGUAGE plpgsql;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION screening_append_only();"
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
    schema_editor.execute("DROP FUNCTION IF EXISTS screening_append_only();")


class Migration(migrations.Migration):
    dependencies = [("screening", "0002_screening_cases")]

    operations = [migrations.RunPython(forward, backward)]
