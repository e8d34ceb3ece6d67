"""Labels of Django's own admin templates that Django 5.2 ships without a Chinese translation (the hidden
column headers of the app list, read out by screen readers), and the forms' label suffix, which Django's
Chinese leaves as an ASCII colon (the house style puts a full-width one after Chinese text; only the admin
renders label suffixes). Marked here so ``make messages`` keeps them in the project's catalogue, where they
are translated; nothing imports this module."""

from django.utils.translation import gettext_noop

ADMIN_LABELS = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    gettext_noop(":"),
)
