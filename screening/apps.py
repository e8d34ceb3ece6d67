from django.apps import AppConfig


class ScreeningConfig(AppConfig):
    """Uploaded test results, the screening pipeline and the staff review queue."""

    name = "screening"
    verbose_name = "Screening"
