"""Rebuild pipeline dataclasses from the JSON that ``screening.pipeline.types.to_json`` writes.

Used for the OCR cache of the training command and for the committed fixtures of the tests.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from screening.pipeline.types import (
    Analyte,
    Box,
    Extraction,
    Field,
    PageText,
    Segment,
    TextResult,
    unnamed_from_json,
)

DATE_FIELDS = ("collected_on", "reported_on")


def _box(d: dict[str, Any] | None) -> Box | None:
    return None if d is None else Box(**d)


def text_result_from_json(d: dict[str, Any]) -> TextResult:
    """The inverse of ``to_json(text_result)``.

    >>> from screening.pipeline.types import to_json
    >>> page = PageText(1, "ocr", 10, 20, (Segment("肌酐", 0.9, Box(1, 0, 0, 5, 5)),))
    >>> text = TextResult((page,), {"name": "rapidocr"})
    >>> text_result_from_json(to_json(text)) == text
    True
    """
    pages = tuple(
        PageText(
            number=p["number"],
            source=p["source"],
            width_px=p["width_px"],
            height_px=p["height_px"],
            segments=tuple(Segment(s["text"], s["score"], _box(s["box"])) for s in p["segments"]),
            rotation_deg=p.get("rotation_deg", 0),
            seconds=p.get("seconds", 0.0),
        )
        for p in d["pages"]
    )
    return TextResult(pages=pages, engine=dict(d.get("engine", {})))


def _field(name: str, d: dict[str, Any] | None) -> Field | None:
    if d is None:
        return None
    value = d["value"]
    if name in DATE_FIELDS and isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return Field(value=value, raw=d["raw"], score=d["score"], box=_box(d.get("box")))


def extraction_from_json(d: dict[str, Any]) -> Extraction:
    """The inverse of ``to_json(extraction)`` (dates come back as ``datetime.date``)."""
    analytes = tuple(Analyte(**{**a, "box": _box(a.get("box"))}) for a in d["analytes"])
    return Extraction(
        analytes=analytes,
        collected_on=_field("collected_on", d.get("collected_on")),
        reported_on=_field("reported_on", d.get("reported_on")),
        hospital=_field("hospital", d.get("hospital")),
        patient_name=_field("patient_name", d.get("patient_name")),
        patient_sex=_field("patient_sex", d.get("patient_sex")),
        patient_age=_field("patient_age", d.get("patient_age")),
        report_type=d.get("report_type", ""),
        quality=dict(d.get("quality", {})),
        parser_version=d.get("parser_version", ""),
        unnamed=unnamed_from_json(d.get("unnamed")),
    )
