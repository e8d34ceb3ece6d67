"""WSGI entry point (gunicorn hospital.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")
django_application = get_wsgi_application()

from django.conf import settings  # noqa: E402

from reservations.shield import FullSlotShield  # noqa: E402 - needs Django set up first

# Answers hopeless hold requests for full slices before Django runs (see reservations/shield.py).
application = FullSlotShield(django_application) if settings.HOLD_SHIELD else django_application
