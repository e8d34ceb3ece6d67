"""``manage.py screening_extract FILE``: read one lab report the way an upload is read, print the result.

The file goes through the upload sanitiser first (``screening.uploads.inspect_and_derive``), so the bytes
read are the ones a patient's upload would give the pipeline. Prints JSON: the analytes (internal code,
LOINC, English name, value, unit, flag, reference range, reader score), the dates, the patient fields, the
report type and the document's quality scores. A refused or unreadable file is a one-line error, exit 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from screening.pipeline.structure import structure
from screening.pipeline.text import TextError, read_file
from screening.pipeline.types import to_json
from screening.services import pipeline
from screening.uploads import AppError, inspect_and_derive


def registered_models() -> dict[str, Any]:
    """The active models, or none when the database is not reachable or migrated (the command then scores
    with the reader's own scores, and says so in ``document_quality.source``)."""
    try:
        return pipeline.active_models()
    except DatabaseError:
        return {}


def read_report(path: str) -> tuple[dict[str, Any], Any, Any, pipeline.Scores]:
    """Sanitise, read and structure one file: (file facts, TextResult, Extraction, Scores); CommandError for
    a file that is refused or cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"{path}: cannot open the file ({exc.strerror or exc}).") from None
    try:
        derived = inspect_and_derive(data)
        text = read_file(derived.data, pipeline.READ_KIND[derived.kind])
    except AppError as exc:
        raise CommandError(f"{path}: refused ({exc.code}): {exc.message}") from None
    except TextError as exc:
        raise CommandError(f"{path}: cannot be read ({exc.code}): {exc.message}") from None
    extraction = structure(text)
    scores = pipeline.model_scores(text, extraction, models=registered_models())
    facts = {"file": path, "kind": derived.kind, "sha256": derived.sha256, "pages": len(text.pages)}
    return facts, text, extraction, scores


class Command(BaseCommand):
    help = "Read a lab report (photo or PDF) as an upload would be read and print the structured extraction."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a JPEG, PNG or HEIC photo, or a PDF")

    def handle(self, *args: Any, **options: Any) -> None:

        facts, text, extraction, scores = read_report(options["file"])
        p_report, p_legible = scores.document
        out = {
            **facts,
            "engine": text.engine,
            "extraction": to_json(extraction),
            "document_quality": {
                "p_lab_report": p_report,
                "p_legible": p_legible,
                "source": scores.source,
                "models": scores.models,
                "reader": extraction.quality,
            },
            "field_scores": scores.fields,
        }
        self.stdout.write(json.dumps(out, ensure_ascii=False, indent=2))
