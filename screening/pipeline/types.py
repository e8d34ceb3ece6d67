"""The data that flows through the screening pipeline: text → structure → validation → rules → decision.

Pure dataclasses (no Django), so the pipeline, the generator, the scikit-learn models and the command line
share one vocabulary. Every extracted field keeps where it came from (page, box) and how sure the reader was
(``score`` in 0..1; a PDF text layer reads with score 1.0). ``to_json()`` gives the JSON-ready dict stored in
the audit record and printed by ``manage.py screening_extract``.

Coordinates are pixels of the page image as read (after orientation was fixed); for a PDF text layer they are
PDF points scaled to a 200 dpi render, or ``None`` where the text layer gives no position.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

TextSource = Literal["pdf_text", "ocr"]
Comparator = Literal["", "<", "<=", ">", ">="]
Flag = Literal["", "H", "L"]
Sex = Literal["M", "F"]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box on one page: ``x0, y0`` top-left, ``x1, y1`` bottom-right, in pixels."""

    page: int  # 1-based
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class Segment:
    """One run of text as the reader returned it (an OCR line box, or one line of a PDF text layer)."""

    text: str
    score: float
    box: Box | None


@dataclass(frozen=True)
class PageText:
    number: int  # 1-based
    source: TextSource
    width_px: int
    height_px: int
    segments: tuple[Segment, ...]
    rotation_deg: int = 0  # the clockwise rotation applied before reading (0, 90, 180, 270)
    seconds: float = 0.0


@dataclass(frozen=True)
class TextResult:
    """Step 1's output for one file: its pages' text, and what read it (for the audit record)."""

    pages: tuple[PageText, ...]
    # e.g. {"name": "rapidocr", "version": "3.10.0", "use_cls": False, "models": {...}}
    engine: dict[str, Any]


@dataclass(frozen=True)
class Field:
    """One non-analyte field (a date, the patient's name, the hospital), with its provenance."""

    value: Any  # date for dates, str for text, int for age, "M"/"F" for sex
    raw: str
    score: float
    box: Box | None = None


@dataclass(frozen=True)
class Analyte:
    """One result row, normalised.

    ``code`` is the internal analyte code (``creatinine``, ``egfr``, ``inr``, ``plt``, ...), ``loinc``
    its LOINC code. ``value`` is as printed in ``unit``; ``value_canonical`` is converted to the analyte's
    canonical unit ``unit_canonical`` (creatinine µmol/L, eGFR mL/min/1.73m2, ...) or ``None`` when no
    conversion is known. ``score`` is the lowest reader score of the segments the value came from.
    """

    code: str
    loinc: str
    name_en: str
    name_zh: str
    raw_name: str
    value: float | None
    value_raw: str
    comparator: Comparator = ""
    flag: Flag = ""
    unit: str = ""  # normalised (UCUM-like) spelling of the printed unit, "" when none was found
    unit_raw: str = ""
    value_canonical: float | None = None
    unit_canonical: str = ""
    ref_low: float | None = None
    ref_high: float | None = None
    ref_raw: str = ""
    score: float = 0.0
    box: Box | None = None


@dataclass(frozen=True)
class UnnamedRow:
    """A result row whose name is not in the catalogue, kept as read for the reviewer.

    ``label`` is the row's name cells as read (Chinese and/or English), ``value`` the result as printed
    (a number with its comparator, or a word such as 阴性; any H/L mark is left out) and ``unit`` the unit
    as printed ("" when none). No rule reads these rows: they are shown, never decided on.
    """

    label: str
    value: str
    unit: str = ""


@dataclass(frozen=True)
class Extraction:
    """Step 2's output: everything read from one file, structured."""

    analytes: tuple[Analyte, ...]
    collected_on: Field | None = None  # 采样/采集 date
    reported_on: Field | None = None  # 报告 date
    hospital: Field | None = None
    patient_name: Field | None = None
    patient_sex: Field | None = None  # value "M" or "F"
    patient_age: Field | None = None  # value int years
    report_type: str = ""  # e.g. "renal_function", "coagulation", "blood_count", "pregnancy", "" unknown
    quality: dict[str, float] = field(default_factory=dict)  # reader statistics (segments, mean score, ...)
    parser_version: str = ""
    unnamed: tuple[UnnamedRow, ...] = ()  # result rows the reader found but could not name, in page order

    def analyte(self, code: str) -> Analyte | None:
        """The first row read for ``code``, or ``None``."""
        return next((a for a in self.analytes if a.code == code), None)


def to_json(obj: Any) -> Any:
    """A JSON-ready copy of any of the dataclasses above (dates as ISO strings)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_json(v) for v in obj]
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj


def unnamed_from_json(data: Any) -> tuple[UnnamedRow, ...]:
    """The unnamed rows of a stored extraction (none for one stored before they were kept).

    >>> unnamed_from_json([{"label": "甲状腺球蛋白 Tg", "value": "12.3", "unit": "ng/mL"}])
    (UnnamedRow(label='甲状腺球蛋白 Tg', value='12.3', unit='ng/mL'),)
    """
    if not isinstance(data, list):
        return ()
    return tuple(
        UnnamedRow(str(row.get("label", "")), str(row.get("value", "")), str(row.get("unit", "")))
        for row in data
        if isinstance(row, dict)
    )
