from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate

from hospital.permissions import ADMINISTRATOR_GRANTS, after_migrate


class HospitalConfig(AppConfig):
    """The shell: settings, URLs, the Celery app and what spans the apps (the administrator's grants)."""

    name = "hospital"
    verbose_name = "Hospital"

    def ready(self) -> None:
        # Django makes an app's permissions on that app's own post_migrate: grant after the last of them.
        last = [config for config in apps.get_app_configs() if config.label in ADMINISTRATOR_GRANTS][-1]
        post_migrate.connect(after_migrate, sender=last, dispatch_uid="hospital-administrator-grants")
