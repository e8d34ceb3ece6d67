"""On PostgreSQL, make the audit table append-only in the database itself: UPDATE and DELETE raise."""

from django.db import migrations

FORBID = """
CREATE OR REPLACE FUNCTION medcard_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'medcard_auditevent is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER medcard_auditevent_append_only
    BEFORE UPDATE OR DELETE ON medcard_auditevent
    FOR EACH ROW EXECUTE FUNCTION medcard_auditevent_append_only();
"""
ALLOW = """
DROP TRIGGER IF EXISTS medcard_auditevent_append_only ON medcard_auditevent;
DROP FUNCTION IF EXISTS medcard_auditevent_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORBID)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW)


class Migration(migrations.Migration):
    dependencies = [("medcard", "0002_roles")]

    operations = [migrations.RunPython(forward, backward)]
