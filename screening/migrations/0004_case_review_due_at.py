from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("screening", "0003_append_only")]

    operations = [
        migrations.RenameField(model_name="screeningcase", old_name="review_expected_at", new_name="review_due_at"),
    ]
