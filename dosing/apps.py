from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DosingConfig(AppConfig):
    """Pharmacists' dose calculator: cases, pages and API around the pure engine in dosing/engine/."""

    name = "dosing"
    verbose_name = _("Dosing")
