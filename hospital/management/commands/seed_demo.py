"""Load the demo hospital: departments, doctors and one account per role. Idempotent."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from medcard.services import demo_accounts_seed
from reservations.services import demo_departments_seed
from reservations.services.demo import demo_schedule_seed
from screening.services.demo import demo_screening_seed


class Command(BaseCommand):
    help = "Create or refresh the demo data (safe to run again). Refused unless DEMO_DATA_ALLOWED."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_DATA_ALLOWED:
            raise CommandError(
                "Demo data has well-known passwords and is refused here: set DEMO_DATA_ALLOWED=true "
                "only on a development or training machine."
            )
        departments, doctors = demo_departments_seed()
        sessions = demo_schedule_seed()
        logins = demo_accounts_seed()
        models, live = demo_screening_seed()
        self.stdout.write(
            f"  Demo data: {departments} departments, {doctors} doctors, {sessions} new sessions, "
            f"{models} screening model versions (in shadow), {live} exam screened live. "
            "Demo logins (role, name, password):"
        )
        for login in logins:
            self.stdout.write(f"  {login['role']:<14} {login['login']:<14} {login['password']}")
