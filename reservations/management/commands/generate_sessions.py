"""Generate sessions and slots from the active weekly templates; running it twice creates nothing new."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reservations.schedules import generation_horizon_days, sessions_generate


class Command(BaseCommand):
    help = (
        "Create the sessions of the active weekly templates from today to today + N days (local dates). "
        "N defaults to the longest release window of all booking rules."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=None, help="How many days ahead (default: see above)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"] if options["days"] is not None else generation_horizon_days()
        if days < 0:
            raise CommandError("--days cannot be negative.")
        created = sessions_generate(days_ahead=days)
        self.stdout.write(f"{created} sessions created for the next {days} days.")
