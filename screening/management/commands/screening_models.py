"""``manage.py screening_models sync|list|activate TASK VERSION --approved-by USER|retire TASK VERSION``.

``sync`` registers the committed artefacts of ``screening/ml/artefacts/`` (new ones in shadow); ``activate``
makes a version the one that gates decisions (the task's previous active version is retired: rolling back is
activating it again); ``retire`` stops using a version.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from medcard.models import User
from screening.services import registry
from screening.services.cases import ScreeningRefused


class Command(BaseCommand):
    help = "Register, list, activate and retire screening model versions."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("sync", help="register new artefacts (in shadow)")
        sub.add_parser("list", help="every registered version and its status")
        activate = sub.add_parser("activate", help="make a version active (retires the current one)")
        activate.add_argument("task")
        activate.add_argument("version")
        activate.add_argument("--approved-by", required=True, help="username of the approving staff member")
        retire = sub.add_parser("retire", help="stop using a version")
        retire.add_argument("task")
        retire.add_argument("version")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._run(options)
        except ScreeningRefused as exc:
            raise CommandError(exc.message) from None

    def _run(self, options: dict[str, Any]) -> None:
        action = options["action"]
        if action == "sync":
            created = registry.models_sync()
            for row in created:
                self.stdout.write(f"registered {row.task} {row.version} ({row.status})")
            self.stdout.write(f"{len(created)} new version(s).")
        elif action == "list":
            for item in registry.models_list():
                line = f"{item['task']:<10} {item['version']:<10} {item['status']:<8} {item['sha256'][:12]}"
                self.stdout.write(f"{line} {item['approved_by']}")
        elif action == "activate":
            approver = User.objects.filter(username=options["approved_by"]).first()
            if approver is None:
                raise CommandError(f"No user {options['approved_by']!r}.")
            row = registry.model_activate(
                task=options["task"], version=options["version"], approved_by=approver
            )
            self.stdout.write(f"{row.task} {row.version} is active (approved by {approver.username}).")
        elif action == "retire":
            row = registry.model_retire(task=options["task"], version=options["version"])
            self.stdout.write(f"{row.task} {row.version} is retired.")
