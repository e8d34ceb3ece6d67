"""The analyte catalogue (``analytes.json``): LOINC, names, units, conversions, plausibility (no Django).

>>> cat = catalogue()
>>> cat["creatinine"].loinc, cat["creatinine"].unit, cat["creatinine"].plausible_low
('2160-0', 'umol/L', 20.0)
>>> [normalize_unit(u) for u in ("μmol/L", "×10~9/L", "mlU/mL", "mL/min/1.73m²")]
['umol/L', '10*9/L', 'm[IU]/mL', 'mL/min/{1.73_m2}']
>>> to_canonical("creatinine", 1.0, "mg/dL")
88.4
>>> to_canonical("glucose", 90, "mg/dL"), to_canonical("inr", 1.1, "")
(4.9959, 1.1)
>>> to_canonical("hba1c", 48, "mmol/mol"), to_canonical("tc", 200, "mg/dL"), to_canonical("tg", 150, "mg/dL")
(6.543, 5.172, 1.6935)
>>> len(ANALYTE_CODES) >= 60 and set(RULE_CODES) <= set(ANALYTE_CODES)
True
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

CATALOGUE_PATH = Path(__file__).with_name("analytes.json")

# The codes the rules, the exam mappings and the pages key on: the catalogue must always have them.
RULE_CODES: tuple[str, ...] = (
    "creatinine",
    "urea",
    "uric_acid",
    "egfr",
    "cystatin_c",
    "pt",
    "inr",
    "aptt",
    "fibrinogen",
    "d_dimer",
    "wbc",
    "rbc",
    "hgb",
    "plt",
    "hcg",
    "alt",
    "ast",
    "tbil",
    "glucose",
    "potassium",
    "sodium",
)

DIMENSIONLESS = "{INR}"  # the canonical unit of the INR, legitimately not printed
# Canonical units that are not printed (a ratio, a pH, a dipstick's presence): a row without a unit converts.
UNPRINTED_UNITS = frozenset({DIMENSIONLESS, "[pH]", "{ratio}", "{presence}"})


@dataclass(frozen=True)
class AnalyteDef:
    """One catalogue entry; ``value_canonical = value × conversions[unit] + offsets.get(unit, 0)``."""

    code: str
    loinc: str
    loinc_display: str
    loinc_alt: Mapping[str, str]
    name_en: str
    name_zh: str
    names_zh: tuple[str, ...]
    names_en: tuple[str, ...]
    ocr_variants: tuple[str, ...]
    unit: str  # canonical, normalised spelling
    conversions: Mapping[str, float]
    plausible_low: float
    plausible_high: float
    source: str
    # unit -> offset added after the factor (affine conversions such as HbA1c mmol/mol -> %)
    offsets: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    result: str = "number"  # "grade" where a dipstick grade (阴性, 1+) is the usual printing

    def is_plausible(self, value_canonical: float) -> bool:
        """Whether a value in the canonical unit lies within the range a real result can take."""
        return self.plausible_low <= value_canonical <= self.plausible_high


def unit_key(text: str) -> str:
    """The comparison key of a printed unit: NFKC, µ/μ→u, ×→x, lower case, no spaces, ``^~*°()[]``.

    >>> unit_key("×10^9/L") == unit_key("x10~9/L") == unit_key("10*9/L") == unit_key("×10⁹ / L")
    True
    """
    key = unicodedata.normalize("NFKC", text).replace("μ", "u").replace("µ", "u").replace("×", "x")
    key = re.sub(r"[\s^~*°()\[\]{}]", "", key.lower())
    return key[1:] if key.startswith("x10") else key


@functools.cache
def _load() -> dict[str, Any]:
    with CATALOGUE_PATH.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@functools.cache
def catalogue() -> Mapping[str, AnalyteDef]:
    """Code → :class:`AnalyteDef`, in the catalogue's order (read once per process)."""
    entries: dict[str, AnalyteDef] = {}
    for code, raw in _load()["analytes"].items():
        low, high = raw["plausible"]
        entries[code] = AnalyteDef(
            code=code,
            loinc=raw["loinc"],
            loinc_display=raw["loinc_display"],
            loinc_alt=MappingProxyType(dict(raw["loinc_alt"])),
            name_en=raw["name_en"],
            name_zh=raw["name_zh"],
            names_zh=tuple(raw["names_zh"]),
            names_en=tuple(raw["names_en"]),
            ocr_variants=tuple(raw["ocr_variants"]),
            unit=raw["unit"],
            conversions=MappingProxyType({k: float(v) for k, v in raw["conversions"].items()}),
            plausible_low=float(low),
            plausible_high=float(high),
            source=raw["source"],
            offsets=MappingProxyType({k: float(v) for k, v in raw.get("offsets", {}).items()}),
            result=raw.get("result", "number"),
        )
    missing = set(RULE_CODES) - set(entries)
    if missing:
        raise ValueError(f"analytes.json lacks {sorted(missing)}")
    return MappingProxyType(entries)


@functools.cache
def unit_table() -> Mapping[str, str]:
    """:func:`unit_key` of every known printed spelling → its normalised unit."""
    table: dict[str, str] = {}
    for unit, spellings in _load()["units"].items():
        if unit.startswith("_"):
            continue
        # A unit that is never printed ([pH], {ratio}) has no spellings, and its own name is not one either.
        for spelling in (unit, *spellings) if spellings else ():
            key = unit_key(spelling)
            if table.get(key, unit) != unit:
                raise ValueError(f"unit spelling {spelling!r} maps to both {table[key]} and {unit}")
            table[key] = unit
    return MappingProxyType(table)


def ignore_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(Chinese, English) names of other rows that contain a catalogue name and must not be read as it."""
    raw = _load()["ignore_names"]
    return tuple(raw["names_zh"]), tuple(raw["names_en"])


def normalize_unit(text: str) -> str:
    """The normalised (UCUM-like) spelling of a printed unit, or ``""`` when it is not known."""
    return unit_table().get(unit_key(text), "") if text.strip() else ""


def to_canonical(code: str, value: float, unit: str) -> float | None:
    """``value`` (printed in normalised ``unit``) in the analyte's canonical unit, or ``None`` if unknown.

    A missing unit converts only for an analyte whose canonical unit is not printed (INR, urine pH, ratios).
    """
    entry = catalogue()[code]
    if not unit:
        unit = entry.unit if entry.unit in UNPRINTED_UNITS else ""
    factor = entry.conversions.get(unit)
    if factor is None:
        return None
    return round(value * factor + entry.offsets.get(unit, 0.0), 4)


# Every catalogued code, in the catalogue's order (the rules' codes first).
ANALYTE_CODES: tuple[str, ...] = tuple(_load()["analytes"])


def plausibility_table() -> dict[str, tuple[str, float, float]]:
    """Code → (canonical unit, plausible low, plausible high), the shape the validation step reads."""
    return {code: (e.unit, e.plausible_low, e.plausible_high) for code, e in catalogue().items()}
