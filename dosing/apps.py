from django.apps import AppConfig


class DosingConfig(AppConfig):
    """Pharmacists' dose calculator: cases, pages and API around the pure engine in dosing/engine/."""

    name = "dosing"
    verbose_name = "Dosing"
