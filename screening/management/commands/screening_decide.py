"""``manage.py screening_decide FILE [FILE ...] --exam CODE --age N --sex M|F [--risk ITEM ...]``.

Reads the files as uploads are read (``screening_extract``), then decides as a booking of ``--exam`` would
be decided for a patient of that age and sex who answered yes to each ``--risk`` item and no to the exam's
other questions. Prints the outcome, each reason with its patient and staff text, and the full decision
record. ``--name`` is the patient's name on the booking (default: the name printed on the first report, so
the identity check passes). A refused or unreadable file, or an unknown exam or risk item, is a one-line
error, exit 1.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.clock import local_today
from screening import reasons
from screening.management.commands.screening_extract import read_report, registered_models
from screening.pipeline.decide import decide
from screening.pipeline.rules import RuleFileError, load_ruleset
from screening.pipeline.validate import PatientFacts
from screening.services import pipeline


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = "Decide a screening from lab report files for an exam and a patient's age, sex and risk answers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE", help="the report(s): photos or PDFs")
        parser.add_argument("--exam", required=True, help="exam code, a rules file (e.g. ct_contrast)")
        parser.add_argument("--age", required=True, type=int, help="the patient's age in years")
        parser.add_argument("--sex", required=True, choices=["M", "F"])
        parser.add_argument("--risk", action="append", default=[], help="a questionnaire item answered yes")
        parser.add_argument("--name", default=None, help="the booking patient's name")
        parser.add_argument("--visit-date", default=None, help="YYYY-MM-DD (default: today)")
        parser.add_argument("--today", default=None, help="YYYY-MM-DD (default: the hospital's today)")

    def handle(self, *args: Any, **options: Any) -> None:

        try:
            ruleset = load_ruleset(options["exam"])
        except (KeyError, RuleFileError) as exc:
            raise CommandError(f"Unknown or broken exam {options['exam']!r}: {exc}") from None
        unknown = sorted(set(options["risk"]) - set(ruleset.questionnaire))
        if unknown:
            raise CommandError(
                f"--risk {', '.join(unknown)} is not asked for {ruleset.exam}; "
                f"its questions are: {', '.join(ruleset.questionnaire)}."
            )
        if not 0 <= options["age"] <= 130:
            raise CommandError("--age must be between 0 and 130.")
        today = _date(options["today"]) if options["today"] else local_today()
        visit = _date(options["visit_date"]) if options["visit_date"] else today
        read = [read_report(path) for path in options["files"]]
        extractions = [extraction for _, _, extraction, _ in read]
        printed = next((e.patient_name.value for e in extractions if e.patient_name is not None), "")
        patient = PatientFacts(
            name=options["name"] or str(printed), sex=options["sex"], age_years=options["age"]
        )
        answers = {item: item in options["risk"] for item in ruleset.questionnaire}
        models = registered_models()
        decision = decide(
            ruleset=ruleset,
            extractions=extractions,
            patient=patient,
            answers=answers,
            visit_date=visit,
            today=today,
            confidences=[scores.fields for _, _, _, scores in read],
            document_scores=[scores.document for _, _, _, scores in read],
            thresholds=pipeline.thresholds_for(models),
        )
        explained = []
        for reason in decision.reasons:
            text = reasons.describe(reason.code, reason.params)
            explained.append(
                {"code": reason.code, "fixable": reason.fixable, "params": dict(reason.params), **text}
            )
        out = {
            "outcome": decision.outcome,
            "exam": decision.ruleset,
            "files": [facts for facts, _, _, _ in read],
            "answers": answers,
            "reasons": explained,
            "decision": decision.to_json(),
        }
        self.stdout.write(json.dumps(out, ensure_ascii=False, indent=2, default=str))
