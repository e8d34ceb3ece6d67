from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MedcardConfig(AppConfig):
    """Accounts, patients, real-name checks, medical cards, QR tokens and the personal-data audit trail."""

    name = "medcard"
    verbose_name = _("Medical card")
