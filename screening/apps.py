from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScreeningConfig(AppConfig):
    """Uploaded test results, the screening pipeline and the staff review queue."""

    name = "screening"
    verbose_name = _("Screening")

    def ready(self) -> None:
        # Local: the gate registers itself with reservations when its module loads (models must be ready).
        from screening import gate  # noqa: F401
