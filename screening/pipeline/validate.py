"""Step 3 of the screening pipeline: check the fields read from one report and derive the facts rules use.

Deterministic and pure (no Django). Every check that fails adds an ``Issue`` with a reason code to the field
it concerns; a field is *validated* when it was read and has no issue. The decision step auto-decides only on
validated fields, so an issue never declines anything by itself: it sends the case to a person.

What is checked (reference: ``shared/reference/screening.md`` §4.1 and §6.1 step 4):

1. per analyte: a canonical value in the analyte's canonical unit, inside its plausibility range;
2. creatinine's unit against its magnitude (0.2–25 is mg/dL, 20–2,000 is µmol/L, anything else is review);
3. the printed H/L flag against the printed reference range;
4. a printed eGFR against CKD-EPI 2021 recomputed from creatinine and the *booking patient's* age and sex
   (decisions use the recomputed value; a printed value more than 10 apart, or on the other side of 30 or 45,
   is ``egfr_mismatch``);
5. dates: collection date present, not in the future, not after the report date; the result's age;
6. identity: the printed name, sex and age against the patient of the booking.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from screening.pipeline.catalogue import plausibility_table, unit_key
from screening.pipeline.types import Analyte, Comparator, Extraction, Sex

VALIDATE_VERSION = "1.0.0"

CREATININE_UMOL_PER_MG_DL = 88.4  # IDMS-traceable creatinine: 1 mg/dL = 88.4 µmol/L
AGE_TOLERANCE_YEARS = 1
ADULT_AGE_YEARS = 18  # CKD-EPI 2021 is validated for adults only
EGFR_MISMATCH_TOLERANCE = 10.0  # mL/min/1.73 m², reference §4.1
EGFR_THRESHOLDS = (30.0, 45.0)  # the contrast thresholds a printed and a recomputed value must agree on

# The reason codes this step can emit (each has messages in screening/reasons.py; a test checks).
VALIDATE_CODES = frozenset(
    {
        "unknown_unit",
        "implausible_value",
        "value_unreadable",
        "value_censored",
        "creatinine_unit_ambiguous",
        "flag_inconsistent",
        "egfr_mismatch",
        "egfr_not_recomputed",
        "date_in_future",
        "collection_date_missing",
        "report_before_collection",
        "result_expired",
        "identity_name_mismatch",
        "identity_unverified",
        "identity_sex_mismatch",
        "identity_age_mismatch",
    }
)

# Canonical unit and plausibility range (inclusive) per analyte code, from the analyte catalogue. Plausible
# means "a living patient can have it", not "normal": a value outside is a misread or a wrong unit.
PLAUSIBILITY: dict[str, tuple[str, float, float]] = plausibility_table()


def ckd_epi_2021(scr_mg_dl: float, age_years: float, female: bool) -> float:
    """eGFR in mL/min/1.73 m² by the race-free CKD-EPI 2021 creatinine equation (Inker et al., NEJM 2021).

    Parameters
    ----------
    scr_mg_dl : float
        Serum creatinine in mg/dL (µmol/L ÷ 88.4), IDMS-traceable.
    age_years : float
        Age in years; the equation is for adults (≥ 18).
    female : bool
        Sex as recorded for the patient.

    Examples
    --------
    >>> round(ckd_epi_2021(1.0, 60, female=False), 1)
    86.2
    >>> round(ckd_epi_2021(0.8, 60, female=True), 1)
    84.3
    >>> round(ckd_epi_2021(88 / 88.4, 50, female=False), 1)
    92.2
    >>> round(ckd_epi_2021(2.0, 70, female=False), 1)
    35.2
    """
    if scr_mg_dl <= 0 or age_years < 0:
        raise ValueError(f"creatinine must be positive and age non-negative, got {scr_mg_dl}, {age_years}")
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = scr_mg_dl / kappa
    sex_factor = 1.012 if female else 1.0
    return 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.200 * 0.9938**age_years * sex_factor


@dataclass(frozen=True)
class PatientFacts:
    """The booking's patient as the platform knows them (real-name verified), not as the report prints."""

    name: str
    sex: Sex
    age_years: int  # today
    birth_date: dt.date | None = None

    def age_on(self, day: dt.date, *, today: dt.date) -> int:
        """Whole years of age on ``day``: from the birth date when known, else shifted from today's age."""
        if self.birth_date is not None:
            before_birthday = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
            return day.year - self.birth_date.year - before_birthday
        return self.age_years - max(0, (today - day).days // 365)


@dataclass(frozen=True)
class Issue:
    """One failed check: a reason code, the field key it concerns and the values behind it."""

    code: str
    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldCheck:
    """The checks of one decision-relevant field (``analyte:creatinine``, ``collected_on``, ...)."""

    key: str
    present: bool
    issues: tuple[Issue, ...] = ()

    @property
    def ok(self) -> bool:
        """Read, and no check failed: usable for an automatic decision (confidence permitting)."""
        return self.present and not self.issues


@dataclass(frozen=True)
class Fact:
    """A validated or derived value for the rules, with the field keys it depends on.

    ``sources`` are field keys of the extraction (``analyte:creatinine``, ``collected_on``) or of the
    booking's patient profile (``patient:age_years``). ``upload`` is the index of the extraction among the
    booking's uploads, set by the decision step when it merges uploads (``None`` for a single validation).
    """

    value: Any
    unit: str = ""
    sources: tuple[str, ...] = ()
    comparator: Comparator = ""
    collected_on: dt.date | None = None
    ref_low: float | None = None
    ref_high: float | None = None
    flag: str = ""
    upload: int | None = None

    def refs(self) -> tuple[str, ...]:
        """The source keys qualified by upload (``0/analyte:creatinine``); patient keys stay as they are."""
        if self.upload is None:
            return self.sources
        return tuple(s if s.startswith("patient:") else f"{self.upload}/{s}" for s in self.sources)


Identity = Literal["match", "mismatch", "unverified"]


@dataclass(frozen=True)
class Validation:
    """Step 3's output for one extraction.

    ``checks`` by field key; ``facts`` by name: one per usable analyte under its code (canonical value and
    unit), ``egfr_recomputed`` when creatinine allows it, ``patient_age_years``, ``patient_sex`` and
    ``patient_birth_date`` from the profile, ``collected_on`` and ``result_age_days``.

    A fact exists whenever its value could be put in the canonical unit, even if a check of a field behind
    it failed (a flag that contradicts the range, a printed eGFR that disagrees): the rules still see the
    value, and the decision step, checking ``ok()`` for every source, sends such a case to a person.
    """

    checks: Mapping[str, FieldCheck]
    facts: Mapping[str, Fact]
    identity: Identity
    version: str = VALIDATE_VERSION

    @property
    def issues(self) -> tuple[Issue, ...]:
        return tuple(i for c in self.checks.values() for i in c.issues)

    def ok(self, key: str) -> bool:
        """Whether field ``key`` was read and passed every check; patient-profile keys always pass."""
        if key.startswith("patient:"):
            return True
        check = self.checks.get(key)
        return check is not None and check.ok


_MG_DL = unit_key("mg/dL")
_UMOL_L = unit_key("umol/L")


def _interval(value: float, comparator: Comparator) -> tuple[float, float]:
    """The true values a printed ``<5`` or ``>90`` allows, as a closed interval (open ends ignored)."""
    if comparator in ("<", "<="):
        return -math.inf, value
    if comparator in (">", ">="):
        return value, math.inf
    return value, value


def _canonical_creatinine(analyte: Analyte, issues: list[Issue], key: str) -> float | None:
    """Creatinine in µmol/L, judging the unit by the printed unit and the magnitude together (§4.1)."""
    value = analyte.value
    if value is None:
        return None
    unit = unit_key(analyte.unit)
    looks_mg_dl = 0.2 <= value <= 25
    looks_umol_l = 20 <= value <= 2000
    if unit == _MG_DL and looks_mg_dl:
        return value * CREATININE_UMOL_PER_MG_DL
    if unit == _UMOL_L and looks_umol_l:
        return value
    if not unit and looks_mg_dl != looks_umol_l:  # no unit printed: the magnitude tells, outside 20–25
        return value * CREATININE_UMOL_PER_MG_DL if looks_mg_dl else value
    params: dict[str, Any] = {"value": value, "unit": analyte.unit_raw or analyte.unit}
    if unit not in ("", _MG_DL, _UMOL_L):
        issues.append(Issue("unknown_unit", key, params))
    elif not looks_mg_dl and not looks_umol_l:
        issues.append(Issue("implausible_value", key, params))
    else:
        issues.append(Issue("creatinine_unit_ambiguous", key, params))
    return None


def _check_analyte(
    analyte: Analyte, *, flags_printed: bool, catalogue: Mapping[str, tuple[str, float, float]]
) -> tuple[FieldCheck, Fact | None]:
    key = f"analyte:{analyte.code}"
    issues: list[Issue] = []
    expected = catalogue.get(analyte.code)
    if analyte.value is None:
        return FieldCheck(key, True, (Issue("value_unreadable", key, {"raw": analyte.value_raw}),)), None
    if expected is None:
        issues.append(Issue("unknown_unit", key, {"analyte": analyte.code, "unit": analyte.unit}))
        return FieldCheck(key, True, tuple(issues)), None
    unit_canonical, low, high = expected
    if analyte.code == "creatinine":
        canonical = _canonical_creatinine(analyte, issues, key)
    elif analyte.value_canonical is None or (
        analyte.unit_canonical and unit_key(analyte.unit_canonical) != unit_key(unit_canonical)
    ):
        canonical = None
        issues.append(Issue("unknown_unit", key, {"analyte": analyte.code, "unit": analyte.unit_raw}))
    else:
        canonical = analyte.value_canonical
    if canonical is not None and not low <= canonical <= high:
        issues.append(Issue("implausible_value", key, {"analyte": analyte.code, "value": canonical}))
        canonical = None
    # 3. flag vs reference range, in the printed unit. A missing arrow counts only where the lab prints
    # arrows on other rows: an OCR that drops "↑" may also have misread the digits beside it.
    lo, hi = _interval(analyte.value, analyte.comparator)
    expected_flag = "H" if analyte.ref_high is not None and lo > analyte.ref_high else ""
    if analyte.ref_low is not None and hi < analyte.ref_low:
        expected_flag = "L"
    if analyte.flag and analyte.flag != expected_flag and (analyte.ref_low, analyte.ref_high) != (None, None):
        issues.append(Issue("flag_inconsistent", key, {"flag": analyte.flag, "ref": analyte.ref_raw}))
    elif not analyte.flag and expected_flag and flags_printed:
        issues.append(Issue("flag_inconsistent", key, {"flag": "", "ref": analyte.ref_raw}))
    if canonical is None:
        return FieldCheck(key, True, tuple(issues)), None
    scale = canonical / analyte.value if analyte.value else 1.0
    fact = Fact(
        value=canonical,
        unit=unit_canonical,
        sources=(key, "collected_on"),
        comparator=analyte.comparator,
        ref_low=None if analyte.ref_low is None else analyte.ref_low * scale,
        ref_high=None if analyte.ref_high is None else analyte.ref_high * scale,
        flag=analyte.flag,
    )
    return FieldCheck(key, True, tuple(issues)), fact


def _egfr_disagrees(printed: float, comparator: Comparator, recomputed: float) -> bool:
    lo, hi = _interval(printed, comparator)
    distance = max(lo - recomputed, recomputed - hi, 0.0)
    if distance > EGFR_MISMATCH_TOLERANCE:
        return True
    # Crossing a threshold: the printed value's whole interval on one side, the recomputed on the other.
    return any((hi < t) != (recomputed < t) or (lo >= t) != (recomputed >= t) for t in EGFR_THRESHOLDS)


_MASKS = "*＊×○?？"  # characters labs print in place of part of a name ("王*明")
_HAN = re.compile(r"[\u3400-\u9fff]")


def normalise_name(name: str) -> str:
    """A comparison key for a printed name: full/half width, spaces and middle dots do not count.

    >>> normalise_name(" 王　小明 ") == normalise_name("王小明")
    True
    >>> normalise_name("Ｗａｎｇ Ｘｉａｏｍｉｎｇ")
    'wangxiaoming'
    """
    return "".join(_words(name))


def _words(name: str) -> list[str]:
    text = unicodedata.normalize("NFKC", name).casefold()
    return [w for w in re.split(r"[\s·•.・,，\-]+", text) if w]


def compare_names(printed: str, booked: str) -> Identity:
    """``match``, ``mismatch``, or ``unverified`` when the name cannot be told for sure.

    Unverified: nothing readable, a masked name that fits (``王*明``), or a name in the other script that
    fits the pinyin of the Chinese one (the same sounds are written by many characters).

    >>> compare_names("SMITH, John", "John Smith"), compare_names("Wang Xiaoming", "王小明")
    ('match', 'unverified')
    >>> compare_names("王*明", "王小明"), compare_names("李*明", "王小明"), compare_names("Li Na", "王小明")
    ('unverified', 'mismatch', 'mismatch')
    """
    got, want = normalise_name(printed), normalise_name(booked)
    if not got or not want:
        return "unverified"
    if got == want:
        return "match"
    got_han, want_han = bool(_HAN.search(got)), bool(_HAN.search(want))
    if not got_han and not want_han:
        # Latin names: family and given name in either order.
        return "match" if sorted(_words(printed)) == sorted(_words(booked)) else "mismatch"
    if got_han and want_han:
        if any(ch in _MASKS for ch in got):
            pattern = "".join("." if ch in _MASKS else re.escape(ch) for ch in got)
            return "unverified" if re.fullmatch(pattern, want) else "mismatch"
        return "mismatch"
    from pypinyin import lazy_pinyin  # only for the rare report printed in the other script

    han, latin = (got, want) if got_han else (want, got)
    syllables = lazy_pinyin(han)
    family, given = "".join(syllables[:1]), "".join(syllables[1:])
    fits = latin in (family + given, given + family) and latin.isascii()
    return "unverified" if fits else "mismatch"


def _check_identity(
    extraction: Extraction, patient: PatientFacts, today: dt.date
) -> tuple[list[FieldCheck], Identity]:
    checks = []
    name_field = extraction.patient_name
    printed = str(name_field.value or "") if name_field is not None else ""
    identity = compare_names(printed, patient.name)
    name_issues: tuple[Issue, ...] = ()
    if identity == "mismatch":
        name_issues = (Issue("identity_name_mismatch", "patient_name", {"printed": printed}),)
    elif identity == "unverified":
        name_issues = (Issue("identity_unverified", "patient_name", {"printed": printed}),)
    checks.append(FieldCheck("patient_name", bool(printed), name_issues))

    sex = extraction.patient_sex
    if sex is not None and sex.value in ("M", "F"):
        sex_issues: tuple[Issue, ...] = ()
        if sex.value != patient.sex:
            sex_issues = (Issue("identity_sex_mismatch", "patient_sex", {"printed": sex.value}),)
            identity = "mismatch"
        checks.append(FieldCheck("patient_sex", True, sex_issues))

    age = extraction.patient_age
    if age is not None and isinstance(age.value, int):
        on = extraction.collected_on.value if extraction.collected_on is not None else None
        expected = patient.age_on(on, today=today) if isinstance(on, dt.date) and on <= today else None
        expected = patient.age_years if expected is None else expected
        age_issues: tuple[Issue, ...] = ()
        if abs(age.value - expected) > AGE_TOLERANCE_YEARS:
            age_issues = (
                Issue("identity_age_mismatch", "patient_age", {"printed": age.value, "expected": expected}),
            )
            if identity == "match":
                identity = "unverified"
        checks.append(FieldCheck("patient_age", True, age_issues))
    return checks, identity


def _check_dates(
    extraction: Extraction, today: dt.date, window_days: int | None
) -> tuple[list[FieldCheck], dt.date | None]:
    checks = []
    collected = extraction.collected_on
    reported = extraction.reported_on
    collected_on = collected.value if collected is not None and isinstance(collected.value, dt.date) else None
    reported_on = reported.value if reported is not None and isinstance(reported.value, dt.date) else None
    issues: list[Issue] = []
    if collected_on is None:
        issues.append(Issue("collection_date_missing", "collected_on"))
    else:
        if collected_on > today:
            issues.append(Issue("date_in_future", "collected_on", {"date": collected_on}))
        if reported_on is not None and reported_on < collected_on:
            issues.append(
                Issue(
                    "report_before_collection",
                    "collected_on",
                    {"collected": collected_on, "reported": reported_on},
                )
            )
        age_days = (today - collected_on).days
        if window_days is not None and age_days > window_days:
            issues.append(
                Issue("result_expired", "collected_on", {"age_days": age_days, "max_age_days": window_days})
            )
    checks.append(FieldCheck("collected_on", collected_on is not None, tuple(issues)))
    if reported_on is not None:
        future = (
            (Issue("date_in_future", "reported_on", {"date": reported_on}),) if reported_on > today else ()
        )
        checks.append(FieldCheck("reported_on", True, future))
    return checks, collected_on


def patient_facts(patient: PatientFacts) -> dict[str, Fact]:
    """The booking patient's profile as facts (trusted: real-name verified at registration)."""
    facts = {
        "patient_age_years": Fact(patient.age_years, "a", ("patient:age_years",)),
        "patient_sex": Fact(patient.sex, "", ("patient:sex",)),
    }
    if patient.birth_date is not None:
        facts["patient_birth_date"] = Fact(patient.birth_date, "", ("patient:birth_date",))
    return facts


def validate(
    extraction: Extraction, *, patient: PatientFacts, today: dt.date, window_days: int | None = None
) -> Validation:
    """Check one extraction's decision-relevant fields and derive the facts rules use.

    ``today`` is the hospital's local date (Asia/Shanghai); ``window_days``, when given, also marks a
    collection date older than that as ``result_expired`` (the rules apply their own windows either way).
    Never raises on bad content: every problem is an ``Issue`` on the field it concerns.
    """
    checks: dict[str, FieldCheck] = {}
    facts: dict[str, Fact] = patient_facts(patient)

    # 5. dates first: every analyte fact carries the collection date it was measured on.
    date_checks, collected_on = _check_dates(extraction, today, window_days)
    checks.update((c.key, c) for c in date_checks)
    if collected_on is not None:
        facts["collected_on"] = Fact(collected_on, "", ("collected_on",), collected_on=collected_on)
        facts["result_age_days"] = Fact((today - collected_on).days, "d", ("collected_on",))

    # 1–3. each analyte once (the first row read for a code; a repeated row is the same test printed twice).
    flags_printed = any(a.flag for a in extraction.analytes)
    for analyte in extraction.analytes:
        key = f"analyte:{analyte.code}"
        if key in checks:
            continue
        check, fact = _check_analyte(analyte, flags_printed=flags_printed, catalogue=PLAUSIBILITY)
        if analyte.comparator and analyte.code in ("creatinine", "inr", "plt"):
            # A bound is no value for a renal or bleeding-risk decision.
            check = FieldCheck(key, check.present, (*check.issues, Issue("value_censored", key)))
            fact = None
        checks[key] = check
        if fact is not None:
            facts[analyte.code] = dataclasses.replace(fact, collected_on=collected_on)

    # 4. eGFR recomputed from creatinine and the booking patient's age (on the collection day) and sex.
    creatinine = facts.get("creatinine")
    printed = extraction.analyte("egfr")
    on = collected_on if collected_on is not None and collected_on <= today else today
    age = patient.age_on(on, today=today)
    if creatinine is not None and age < ADULT_AGE_YEARS:
        # CKD-EPI is for adults; children's eGFR (bedside Schwartz) needs height, so a person decides.
        issue = Issue("egfr_not_recomputed", "analyte:creatinine", {"age_years": age})
        old = checks["analyte:creatinine"]
        checks["analyte:creatinine"] = FieldCheck(old.key, old.present, (*old.issues, issue))
    elif creatinine is not None:
        recomputed = ckd_epi_2021(creatinine.value / CREATININE_UMOL_PER_MG_DL, age, patient.sex == "F")
        sources: tuple[str, ...] = ("analyte:creatinine", "collected_on", "patient:age_years", "patient:sex")
        if "egfr" in facts and printed is not None and printed.value is not None:
            sources = (*sources, "analyte:egfr")
            if _egfr_disagrees(printed.value, printed.comparator, recomputed):
                issue = Issue(
                    "egfr_mismatch",
                    "analyte:egfr",
                    {"printed": printed.value_raw or printed.value, "recomputed": round(recomputed, 1)},
                )
                old = checks["analyte:egfr"]
                checks["analyte:egfr"] = FieldCheck(old.key, old.present, (*old.issues, issue))
        facts["egfr_recomputed"] = Fact(
            round(recomputed, 1), PLAUSIBILITY["egfr"][0], sources, collected_on=collected_on
        )
    if "egfr_recomputed" not in facts and "egfr" in facts:
        # A printed eGFR alone: its equation is unknown (CKD-EPI 2009, Chinese MDRD), so a person checks.
        old = checks["analyte:egfr"]
        checks["analyte:egfr"] = FieldCheck(
            old.key, old.present, (*old.issues, Issue("egfr_not_recomputed", old.key))
        )

    # 6. identity.
    identity_checks, identity = _check_identity(extraction, patient, today)
    checks.update((c.key, c) for c in identity_checks)
    return Validation(checks=checks, facts=facts, identity=identity)
