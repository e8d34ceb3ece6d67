"""Step 4 of the screening pipeline: per-exam eligibility rules, kept as versioned data.

One TOML file per exam in ``screening/rules/`` (read with the standard library's ``tomllib``), owned and
signed off by a named clinical role, with a semver ``version`` that the audit record stores. The file chooses
thresholds and windows; the *kinds* of rule are fixed here, so a file cannot express a clinical auto-decline:

* ``answer``: a questionnaire answer "yes" → review (prior contrast reaction, possible pregnancy, ...).
* ``result``: a lab value. Required always, only with a risk factor, or never. Missing when required →
  ``fail`` with the file's ``missing_reason``; older than ``max_age_days`` on the visit date → ``fail
  result_expired``; inside a ``band`` → ``review`` with the band's reason; otherwise ``pass``.
* ``answer_and_result``: an answer "yes" together with a value below/above a limit → review (metformin
  with eGFR < 30).
* ``finding``: at least one of several values above its printed upper reference limit (an expert clinic's
  referral criterion) → pass; values present but none above → review; none → ``fail`` missing.

``effective_from`` and ``version`` are for the audit record and the sign-off: the file on disk is the one in
force (an earlier version is in git history, and each decision stores the ``exam@version`` it used).

``fail`` is only ever an administrative outcome (a result missing or too old); every clinical outcome is
``review``. The loader refuses a file that breaks this, names an unknown reason code or answer, or has a
malformed field, so a bad file stops at deploy time, not on a patient.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from screening.pipeline.validate import Fact

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"

QUESTIONNAIRE_ITEMS = (
    "diabetes",
    "kidney_disease",
    "metformin",
    "hypertension_medication",
    "anticoagulants",
    "possible_pregnancy",
    "prior_contrast_reaction",
    "dialysis",
)

# Administrative failures a patient fixes by uploading the right report (auto-declinable when confident).
FAIL_CODES = frozenset(
    {
        "missing_renal_function",
        "missing_coagulation",
        "missing_blood_count",
        "missing_liver_function",
        "missing_pregnancy_test",
        "result_expired",
    }
)
# Clinical findings and answers that a person decides on (never auto-declined).
REVIEW_CODES = frozenset(
    {
        "egfr_30_44",
        "egfr_lt_30",
        "metformin_hold",
        "dialysis",
        "kidney_disease_declared",
        "prior_contrast_reaction",
        "possible_pregnancy",
        "hcg_positive",
        "anticoagulants",
        "inr_1_5_1_8",
        "inr_gt_1_8",
        "plt_lt_50",
        "hgb_low",
        "no_qualifying_finding",
        "value_censored",
        "collection_date_missing",
        "questionnaire_incomplete",
    }
)
RULE_CODES = FAIL_CODES | REVIEW_CODES

Result = Literal["pass", "fail", "review"]
Required = Literal["always", "if_risk_factor", "never"]

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_OPS = ("below", "at_or_below", "above", "at_or_above")


class RuleFileError(ValueError):
    """A rules file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Band:
    """``value <op> limit`` → review with ``reason`` (ops: below, at_or_below, above, at_or_above)."""

    op: str
    limit: float
    reason: str


@dataclass(frozen=True)
class Rule:
    """One ``[[rules]]`` entry; which attributes apply depends on ``kind`` (see the module docstring)."""

    id: str
    kind: Literal["answer", "result", "answer_and_result", "finding"]
    title_en: str
    reason: str = ""  # answer / answer_and_result / finding (no finding)
    answer: str = ""  # answer / answer_and_result
    facts: tuple[str, ...] = ()  # result / answer_and_result: the first present is used; finding: all
    required: Required = "never"
    max_age_days: int | None = None
    missing_reason: str = ""
    bands: tuple[Band, ...] = ()
    report_type: str = ""  # the report a patient is asked for when a result is missing (for messages)


@dataclass(frozen=True)
class RiskFactors:
    """Who needs a baseline result: age strictly over ``age_over`` or any of ``answers`` answered yes."""

    age_over: int | None = None
    answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleSet:
    """One exam's rules file, as loaded and checked."""

    exam: str
    title_zh: str
    title_en: str
    version: str
    owner: str
    effective_from: dt.date
    window_days: int
    questionnaire: tuple[str, ...]
    risk_factors: RiskFactors
    rules: tuple[Rule, ...]
    sources: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """``exam@version``, as the audit record stores it."""
        return f"{self.exam}@{self.version}"


@dataclass(frozen=True)
class RuleOutcome:
    """One rule's verdict: the reason code and values behind it, and the field keys it depended on."""

    rule: str
    result: Result
    reason: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    fields: tuple[str, ...] = ()


# Loading ---------------------------------------------------------------------------------------------------


def _take(
    data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any = ...
) -> Any:
    if key not in data:
        if default is ...:
            raise RuleFileError(f"{where}: missing {key!r}")
        return default
    value = data.pop(key)
    # bool is an int to Python; a threshold or a window written as `true` is a typo, not a number.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise RuleFileError(f"{where}: {key!r} must be {_names(kind)}, got {value!r}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _no_extra(data: dict[str, Any], where: str) -> None:
    if data:
        raise RuleFileError(f"{where}: unknown keys {sorted(data)}")


def _strings(values: Any, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RuleFileError(f"{where}: {key!r} must be a list of strings")
    return tuple(values)


def _code(code: str, allowed: frozenset[str], where: str) -> str:
    if code not in allowed:
        raise RuleFileError(f"{where}: unknown reason code {code!r} (known: {', '.join(sorted(allowed))})")
    return code


def _answer(name: str, questionnaire: tuple[str, ...], where: str) -> str:
    if name not in questionnaire:
        raise RuleFileError(f"{where}: answer {name!r} is not in this file's questionnaire")
    return name


def _band(raw: Any, where: str) -> Band:
    if not isinstance(raw, dict):
        raise RuleFileError(f'{where}: a band must be a table like {{ below = 30, reason = "egfr_lt_30" }}')
    data = dict(raw)
    reason = _code(_take(data, "reason", str, where), REVIEW_CODES, where)
    ops = [op for op in _OPS if op in data]
    if len(ops) != 1:
        raise RuleFileError(f"{where}: a band needs exactly one of {', '.join(_OPS)}")
    limit = float(_take(data, ops[0], (int, float), where))
    if not math.isfinite(limit):
        raise RuleFileError(f"{where}: band limit must be finite")
    result = _take(data, "result", str, where, "review")
    if result != "review":
        raise RuleFileError(f"{where}: a clinical band can only send to review, not {result!r}")
    _no_extra(data, where)
    return Band(ops[0], limit, reason)


def _rule(raw: Any, questionnaire: tuple[str, ...], where: str) -> Rule:
    if not isinstance(raw, dict):
        raise RuleFileError(f"{where}: each [[rules]] entry must be a table")
    data = dict(raw)
    rule_id = _take(data, "id", str, where)
    if not _ID.match(rule_id):
        raise RuleFileError(f"{where}: rule id {rule_id!r} must be lower_snake_case")
    where = f"{where} ({rule_id})"
    kind = _take(data, "kind", str, where)
    title_en = _take(data, "title_en", str, where)
    if kind == "answer":
        answer = _answer(_take(data, "answer", str, where), questionnaire, where)
        rule = Rule(
            rule_id,
            "answer",
            title_en,
            reason=_code(_take(data, "reason", str, where), REVIEW_CODES, where),
            answer=answer,
        )
    elif kind == "result":
        required = _take(data, "required", str, where)
        if required not in ("always", "if_risk_factor", "never"):
            raise RuleFileError(f"{where}: 'required' must be always, if_risk_factor or never")
        missing = _take(data, "missing_reason", str, where, "")
        if required != "never":
            _code(missing, FAIL_CODES, where)
        rule = Rule(
            rule_id,
            "result",
            title_en,
            facts=_strings(_take(data, "facts", list, where), where, "facts"),
            required=required,
            max_age_days=_take(data, "max_age_days", int, where, None),
            missing_reason=missing,
            bands=tuple(_band(b, where) for b in _take(data, "bands", list, where, [])),
            report_type=_take(data, "report_type", str, where, ""),
        )
    elif kind == "answer_and_result":
        answer = _answer(_take(data, "answer", str, where), questionnaire, where)
        band = _band(_take(data, "band", dict, where), where)
        rule = Rule(
            rule_id,
            "answer_and_result",
            title_en,
            reason=band.reason,
            answer=answer,
            facts=_strings(_take(data, "facts", list, where), where, "facts"),
            bands=(band,),
        )
    elif kind == "finding":
        rule = Rule(
            rule_id,
            "finding",
            title_en,
            reason=_code(_take(data, "no_finding_reason", str, where), REVIEW_CODES, where),
            facts=_strings(_take(data, "facts", list, where), where, "facts"),
            required="always",
            max_age_days=_take(data, "max_age_days", int, where, None),
            missing_reason=_code(_take(data, "missing_reason", str, where), FAIL_CODES, where),
            report_type=_take(data, "report_type", str, where, ""),
        )
    else:
        raise RuleFileError(f"{where}: unknown kind {kind!r} (answer, result, answer_and_result, finding)")
    if rule.kind != "answer" and not rule.facts:
        raise RuleFileError(f"{where}: 'facts' must name at least one fact")
    if rule.max_age_days is not None and rule.max_age_days <= 0:
        raise RuleFileError(f"{where}: 'max_age_days' must be positive")
    _no_extra(data, where)
    return rule


def parse_ruleset(text: str, *, name: str = "<string>") -> RuleSet:
    """A ``RuleSet`` from a rules file's text; raises ``RuleFileError`` naming the first problem found."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleFileError(f"{name}: not valid TOML: {exc}") from exc
    where = name
    exam = _take(data, "exam", str, where)
    if not _ID.match(exam):
        raise RuleFileError(f"{where}: exam {exam!r} must be lower_snake_case")
    version = _take(data, "version", str, where)
    if not _SEMVER.match(version):
        raise RuleFileError(f"{where}: version {version!r} is not semver (MAJOR.MINOR.PATCH)")
    effective_from = _take(data, "effective_from", dt.date, where)
    if isinstance(effective_from, dt.datetime):
        raise RuleFileError(f"{where}: 'effective_from' must be a date, not a date-time")
    questionnaire = _strings(_take(data, "questionnaire", list, where), where, "questionnaire")
    unknown = set(questionnaire) - set(QUESTIONNAIRE_ITEMS)
    if unknown:
        raise RuleFileError(f"{where}: unknown questionnaire items {sorted(unknown)}")
    risk = dict(_take(data, "risk_factors", dict, where, {}))
    risk_factors = RiskFactors(
        age_over=_take(risk, "age_over", int, f"{where} [risk_factors]", None),
        answers=tuple(
            _answer(a, questionnaire, f"{where} [risk_factors]")
            for a in _strings(risk.pop("answers", []), where, "answers")
        ),
    )
    _no_extra(risk, f"{where} [risk_factors]")
    raw_rules = _take(data, "rules", list, where)
    rules = tuple(_rule(r, questionnaire, f"{where} rule {i + 1}") for i, r in enumerate(raw_rules))
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise RuleFileError(f"{where}: duplicate rule ids")
    if any(r.required == "if_risk_factor" for r in rules) and not (
        risk_factors.age_over or risk_factors.answers
    ):
        raise RuleFileError(f"{where}: a rule is required 'if_risk_factor' but [risk_factors] is empty")
    window_days = _take(data, "window_days", int, where)
    if window_days <= 0:
        raise RuleFileError(f"{where}: 'window_days' must be positive")
    ruleset = RuleSet(
        exam=exam,
        title_zh=_take(data, "title_zh", str, where),
        title_en=_take(data, "title_en", str, where),
        version=version,
        owner=_take(data, "owner", str, where),
        effective_from=effective_from,
        window_days=window_days,
        questionnaire=questionnaire,
        risk_factors=risk_factors,
        rules=rules,
        sources=_strings(_take(data, "sources", list, where, []), where, "sources"),
    )
    if not ruleset.owner.strip():
        raise RuleFileError(f"{where}: 'owner' must name who signed the file off")
    _no_extra(data, where)
    return ruleset


def ruleset_ids() -> list[str]:
    """The exam codes that have a rules file, sorted."""
    return sorted(p.stem for p in RULES_DIR.glob("*.toml"))


def load_ruleset(exam_code: str) -> RuleSet:
    """The validated rules for ``exam_code``: ``KeyError`` if none exist, ``RuleFileError`` if bad."""
    if not _ID.match(exam_code) or not (RULES_DIR / f"{exam_code}.toml").is_file():
        raise KeyError(f"no rules file for exam {exam_code!r}")
    path = RULES_DIR / f"{exam_code}.toml"
    ruleset = parse_ruleset(path.read_text(encoding="utf-8"), name=path.name)
    if ruleset.exam != exam_code:
        raise RuleFileError(
            f"{path.name}: 'exam' is {ruleset.exam!r}, expected the file's name {exam_code!r}"
        )
    return ruleset


def questionnaire_for(exam_code: str) -> tuple[str, ...]:
    """The questionnaire items (booleans) the booking form asks for ``exam_code``."""
    return load_ruleset(exam_code).questionnaire


# Evaluating ------------------------------------------------------------------------------------------------


def _band_hit(band: Band, value: float, comparator: str) -> bool | None:
    """Whether ``value`` (a bound with a ``comparator``) is inside the band; ``None`` if it cannot tell."""
    lo, hi = value, value
    if comparator in ("<", "<="):
        lo = -math.inf
    elif comparator in (">", ">="):
        hi = math.inf
    tests = {
        "below": lambda v: v < band.limit,
        "at_or_below": lambda v: v <= band.limit,
        "above": lambda v: v > band.limit,
        "at_or_above": lambda v: v >= band.limit,
    }[band.op]
    at_lo, at_hi = tests(lo), tests(hi)
    if at_lo == at_hi:
        return bool(at_lo)
    # An open bound sits exactly at the limit (``<5`` against at_or_above 5): decide on the open side.
    if comparator in ("<", ">") and value == band.limit:
        return tests(value - 1e-9 if comparator == "<" else value + 1e-9)
    return None


def _age_on(facts: Mapping[str, Fact], day: dt.date) -> int | None:
    birth = facts.get("patient_birth_date")
    if birth is not None:
        b = birth.value
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))
    age = facts.get("patient_age_years")
    return None if age is None else int(age.value)


def risk_factors_present(
    ruleset: RuleSet, *, facts: Mapping[str, Fact], answers: Mapping[str, bool | None], visit_date: dt.date
) -> list[str]:
    """The risk factors that apply (``age_over_60``, ``diabetes``, ...); an unanswered item counts as yes."""
    present = []
    rf = ruleset.risk_factors
    if rf.age_over is not None:
        age = _age_on(facts, visit_date)
        if age is None or age > rf.age_over:
            present.append(f"age_over_{rf.age_over}")
    present += [a for a in rf.answers if answers.get(a) is not False]
    return present


def _first_fact(rule: Rule, facts: Mapping[str, Fact]) -> tuple[str, Fact] | None:
    return next(((name, facts[name]) for name in rule.facts if name in facts), None)


def _date_problem(rule: Rule, fact: Fact, max_age: int, visit_date: dt.date) -> RuleOutcome | None:
    refs = fact.refs()
    date_refs = tuple(r for r in refs if r.endswith("collected_on"))
    if fact.collected_on is None:
        return RuleOutcome(rule.id, "review", "collection_date_missing", {}, refs)
    age_days = (visit_date - fact.collected_on).days
    if age_days > max_age:
        params = {
            "collected_on": fact.collected_on.isoformat(),
            "age_days": age_days,
            "max_age_days": max_age,
        }
        value_refs = tuple(r for r in refs if not r.startswith("patient:") and r not in date_refs)[:1]
        return RuleOutcome(rule.id, "fail", "result_expired", params, (*value_refs, *date_refs))
    return None


def _evaluate_result(
    rule: Rule, ruleset: RuleSet, facts: Mapping[str, Fact], risks: list[str], visit_date: dt.date
) -> RuleOutcome:
    required = rule.required == "always" or (rule.required == "if_risk_factor" and bool(risks))
    base = {"risk_factors": risks} if rule.required == "if_risk_factor" else {}
    found = _first_fact(rule, facts)
    max_age = rule.max_age_days or ruleset.window_days
    if found is None:
        if required:
            params = {**base, "report_type": rule.report_type, "max_age_days": max_age}
            return RuleOutcome(rule.id, "fail", rule.missing_reason, params)
        return RuleOutcome(rule.id, "pass", "", base)
    name, fact = found
    problem = _date_problem(rule, fact, max_age, visit_date)
    if problem is not None:
        if not required:
            # Not needed for this patient: an undated or old result is ignored, not held against them.
            return RuleOutcome(rule.id, "pass", "", {**base, "ignored": name})
        return RuleOutcome(
            problem.rule, problem.result, problem.reason, {**base, **problem.params}, problem.fields
        )
    params = {
        **base,
        "fact": name,
        "value": fact.value,
        "unit": fact.unit,
        "collected_on": fact.collected_on.isoformat() if fact.collected_on else None,
    }
    for band in rule.bands:
        hit = _band_hit(band, float(fact.value), fact.comparator)
        if hit is None:
            return RuleOutcome(
                rule.id, "review", "value_censored", {**params, "comparator": fact.comparator}, fact.refs()
            )
        if hit:
            return RuleOutcome(rule.id, "review", band.reason, {**params, band.op: band.limit}, fact.refs())
    return RuleOutcome(rule.id, "pass", "", params, fact.refs() if required else ())


def _evaluate_finding(
    rule: Rule, ruleset: RuleSet, facts: Mapping[str, Fact], visit_date: dt.date
) -> RuleOutcome:
    present = [(name, facts[name]) for name in rule.facts if name in facts]
    max_age = rule.max_age_days or ruleset.window_days
    if not present:
        params = {"report_type": rule.report_type, "max_age_days": max_age}
        return RuleOutcome(rule.id, "fail", rule.missing_reason, params)
    problems = []
    for name, fact in present:
        problem = _date_problem(rule, fact, max_age, visit_date)
        if problem is not None:
            problems.append(problem)
            continue
        above = (fact.ref_high is not None and fact.value > fact.ref_high) or (
            fact.ref_high is None and fact.flag == "H"
        )
        if above:
            params = {"fact": name, "value": fact.value, "unit": fact.unit, "ref_high": fact.ref_high}
            return RuleOutcome(rule.id, "pass", "", params, fact.refs())
    if len(problems) == len(present):
        return problems[0]
    fields = tuple(r for _, f in present for r in f.refs())
    return RuleOutcome(rule.id, "review", rule.reason, {"facts": [n for n, _ in present]}, fields)


def evaluate(
    ruleset: RuleSet, *, facts: Mapping[str, Fact], answers: Mapping[str, bool | None], visit_date: dt.date
) -> list[RuleOutcome]:
    """Every rule's outcome, in file order, preceded by ``questionnaire`` when an item is unanswered.

    ``facts`` come from validation (merged across uploads by the decision step); ``answers`` are the booking
    questionnaire's booleans. Result windows count back from ``visit_date``.
    """
    outcomes = []
    unanswered = [q for q in ruleset.questionnaire if not isinstance(answers.get(q), bool)]
    if unanswered:
        outcomes.append(
            RuleOutcome("questionnaire", "review", "questionnaire_incomplete", {"items": unanswered})
        )
    risks = risk_factors_present(ruleset, facts=facts, answers=answers, visit_date=visit_date)
    for rule in ruleset.rules:
        if rule.kind == "answer":
            said_yes = answers.get(rule.answer) is True
            outcomes.append(
                RuleOutcome(rule.id, "review" if said_yes else "pass", rule.reason if said_yes else "")
            )
        elif rule.kind == "result":
            outcomes.append(_evaluate_result(rule, ruleset, facts, risks, visit_date))
        elif rule.kind == "answer_and_result":
            found = _first_fact(rule, facts)
            hit = False
            if answers.get(rule.answer) is True and found is not None:
                hit = _band_hit(rule.bands[0], float(found[1].value), found[1].comparator) is not False
            if hit and found is not None:
                params = {"answer": rule.answer, "fact": found[0], "value": found[1].value}
                outcomes.append(RuleOutcome(rule.id, "review", rule.reason, params, found[1].refs()))
            else:
                outcomes.append(RuleOutcome(rule.id, "pass"))
        else:
            outcomes.append(_evaluate_finding(rule, ruleset, facts, visit_date))
    return outcomes
