"""The known truth of one generated lab report: what was printed, row by row, and for whom.

Frozen dataclasses with no Django and no rendering, so tests, the benchmark and model training can share
specs as JSON. Every ``*_text`` field is the exact string drawn on the page (and written to the PDF text
layer); the parsed fields next to it (``value``, ``comparator``, ``flag``) are what a perfect reader should
extract from that string.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

ReportType = Literal[
    "renal_function",
    "coagulation",
    "blood_count",
    "pregnancy",
    "liver_function",
    "thyroid_function",
    "lipid_panel",
    "glucose_metabolism",
    "thyroid_lipid_hba1c",
    "cardiac_markers",
    "inflammation",
    "electrolytes",
    "urinalysis",
]
Comparator = Literal["", "<", "<=", ">", ">="]
Flag = Literal["", "H", "L"]
Sex = Literal["M", "F"]
# Which equation produced the printed eGFR ("override" when a test fixed the printed value itself).
EgfrFormula = Literal["ckd_epi_2021", "ckd_epi_2009", "mdrd_china", "override"]

# The types ``make_spec`` draws when none is asked for: the first five only, so that every earlier seed still
# gives the report it gave (the others are made on request, and the benchmark asks for each in turn).
DRAWN_REPORT_TYPES: tuple[ReportType, ...] = (
    "renal_function",
    "coagulation",
    "blood_count",
    "pregnancy",
    "liver_function",
)
REPORT_TYPES: tuple[ReportType, ...] = (
    *DRAWN_REPORT_TYPES,
    "thyroid_function",
    "lipid_panel",
    "glucose_metabolism",
    "thyroid_lipid_hba1c",  # the health-check page: thyroid function, lipids and HbA1c together
    "cardiac_markers",
    "inflammation",
    "electrolytes",
    "urinalysis",
)


@dataclass(frozen=True)
class RowTruth:
    """One printed result row.

    ``value`` is the number in ``value_text`` (for ``"<0.5"``: 0.5 with comparator ``"<"``). ``flag`` is
    what the reference range says about the printed value ("H", "L" or ""), and ``flag_glyph`` the mark
    printed for it ("↑", "↓", "H", "L" or ""). ``ref_low``/``ref_high`` are the bounds of ``ref_text``
    (``None`` when open); a bound written with ``<`` or ``>`` is exclusive, see ``ref_text``. A
    ``qualitative`` row prints a grade (阴性, ±, 2+) in ``value_text``; its ``value`` is 0.0 and means
    nothing.
    """

    code: str
    name_zh: str
    name_en: str
    value_text: str
    value: float
    comparator: Comparator
    flag: Flag
    flag_glyph: str
    unit_text: str
    ref_text: str
    ref_low: float | None = None
    ref_high: float | None = None
    qualitative: bool = False


@dataclass(frozen=True)
class ReportSpec:
    """Everything needed to render one report, and the truth a reader should recover from it.

    Dates are the hospital's local (Asia/Shanghai) calendar dates as printed; times are printed ``HH:MM``
    wall-clock strings, so the spec carries no naive datetimes.
    """

    seed: int
    report_type: ReportType
    layout: str
    font: str
    flag_style: Literal["arrow", "letter"]
    hospital: str
    title: str
    patient_name: str
    sex: Sex
    age_years: int
    department: str
    mrn: str
    sample_no: str
    specimen: str
    doctor: str
    tester: str
    reviewer: str
    collected_on: dt.date
    collected_time: str
    received_time: str
    reported_on: dt.date
    reported_time: str
    rows: tuple[RowTruth, ...]
    egfr_formula: EgfrFormula | None = None
    date_format: str = "%Y-%m-%d"  # how dates are printed: "%Y-%m-%d", "%Y/%m/%d" or "%Y年%m月%d日"

    def row(self, code: str) -> RowTruth:
        """The row for ``code``; ``KeyError`` if the report does not carry it."""
        for row in self.rows:
            if row.code == code:
                return row
        raise KeyError(code)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(row.code for row in self.rows)

    def printed_date(self, date: dt.date) -> str:
        return date.strftime(self.date_format)

    @property
    def sex_zh(self) -> str:
        return "男" if self.sex == "M" else "女"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (dates as ISO strings); ``ReportSpec.from_json`` reverses it."""
        data = dataclasses.asdict(self)
        data["collected_on"] = self.collected_on.isoformat()
        data["reported_on"] = self.reported_on.isoformat()
        # what json.loads gives back; a numeric row leaves ``qualitative`` out (as specs stored before it did)
        data["rows"] = [{k: v for k, v in row.items() if k != "qualitative" or v} for row in data["rows"]]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReportSpec:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in fields}
        values["collected_on"] = dt.date.fromisoformat(data["collected_on"])
        values["reported_on"] = dt.date.fromisoformat(data["reported_on"])
        values["rows"] = tuple(RowTruth(**row) for row in data["rows"])
        return cls(**values)
