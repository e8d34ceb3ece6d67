"""``manage.py screening_models sync|list|activate TASK VERSION --approved-by USER|retire TASK VERSION``
and ``retrain --task fieldconf --base VERSION --version VERSION [--since DATE] [--by USER]``.

``sync`` registers the committed artefacts of ``screening/ml/artefacts/`` (new ones in shadow); ``activate``
makes a version the one that gates decisions (the task's previous active version is retired: rolling back is
activating it again); ``retire`` stops using a version; ``retrain`` trains a new field-confidence version
from staff corrections and registers it in shadow.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from medcard.models import User
from screening.services import registry, retrain
from screening.services.cases import AppError

RETRAIN_HELP = (
    "Train a new field-confidence version from the base's training set plus the fields staff kept or "
    "corrected in reviews, evaluate it on the base's held-out set and register it in shadow. Run by hand: "
    "there is no scheduled (Celery beat) retraining, since a new version gates nothing until a named "
    "clinician signs it off with 'activate'."
)
# The held-out figures printed side by side: (label, path in the metrics dict).
COMPARED = (
    ("AUROC", ("auroc",)),
    ("Brier score", ("brier",)),
    ("ECE (10 bins)", ("ece_10",)),
    ("calibration slope", ("calibration_slope",)),
    ("auto-use threshold", ("operating_point", "threshold")),
    ("coverage at threshold", ("operating_point", "coverage")),
    ("precision at threshold", ("operating_point", "precision")),
)


def _figure(metrics: dict[str, Any], path: tuple[str, ...]) -> str:
    value: Any = metrics
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _since(value: str) -> dt.datetime:
    """The start of a local (hospital) day given as YYYY-MM-DD."""
    day = dt.date.fromisoformat(value)
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), timezone.get_default_timezone())


class Command(BaseCommand):
    help = (
        "Register, list, activate and retire screening model versions; retrain the field-confidence model "
        "from staff corrections (by hand, with no Celery beat entry: a new version waits in shadow for a "
        "clinician's sign-off)."
    )

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
        again = sub.add_parser(
            "retrain",
            help="train a field-confidence version from staff corrections (in shadow; by hand, "
            "never scheduled: activation needs a clinician's sign-off)",
            description=RETRAIN_HELP,
        )
        again.add_argument(
            "--task", required=True, choices=["fieldconf"], help="only fieldconf has staff labels"
        )
        again.add_argument(
            "--base", required=True, help="the version whose training and held-out sets are used"
        )
        again.add_argument(
            "--version", required=True, dest="new_version", help="the new version (MAJOR.MINOR.PATCH)"
        )
        again.add_argument("--since", type=_since, help="only reviews from this local date on (YYYY-MM-DD)")
        again.add_argument("--by", help="username of the member of staff retraining (for the log)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._run(options)
        except AppError as exc:
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
        elif action == "retrain":
            self._retrain(options)

    def _retrain(self, options: dict[str, Any]) -> None:
        actor = None
        if options["by"]:
            actor = User.objects.filter(username=options["by"]).first()
            if actor is None:
                raise CommandError(f"No user {options['by']!r}.")
        done = retrain.fieldconf_retrain(
            base_version=options["base"],
            new_version=options["new_version"],
            actor=actor,
            since=options["since"],
        )
        summary, meta, base = done.summary, done.meta, done.base_meta
        self.stdout.write(
            f"{summary.examples} staff-labelled fields from {summary.cases} reviewed cases: "
            f"{summary.kept} kept, {summary.corrected} corrected."
        )
        if summary.corrections_unused:
            self.stdout.write(
                f"{summary.corrections_unused} correction(s) not on a field a decision rested on (not used)."
            )
        self.stdout.write(f"Held-out set of {base['version']} ({meta['n_test']} fields, the same for both):")
        self.stdout.write(f"  {'':<24}{base['version']:>10}{meta['version']:>10}")
        for label, path in COMPARED:
            old, new = _figure(base["metrics"], path), _figure(meta["metrics"], path)
            self.stdout.write(f"  {label:<24}{old:>10}{new:>10}")
        self.stdout.write(f"Written: {done.artefact} (and its .json meta, .md model card, .npz data).")
        row = done.row
        self.stdout.write(
            f"Registered {row.task} {row.version} in {row.status}; the active version is unchanged. After "
            f"review and sign-off: screening_models activate {row.task} {row.version} --approved-by USER"
        )
