from django.apps import AppConfig


class MedcardConfig(AppConfig):
    """Accounts, patients, real-name checks, medical cards, QR tokens and the personal-data audit trail."""

    name = "medcard"
    verbose_name = "Medical card"
