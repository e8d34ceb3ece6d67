"""Step 6 of the screening pipeline: approve, decline or send to staff, with reasons (pure, no Django).

The decision table (reference §6.1 step 7, as the issue settled it):

* **approve** only when every rule passes, every field a rule used is validated (step 3) and confident
  (``P(correct) >= t_field``, from the field-confidence model), the patient's name on each report used matches
  the booking and is confident too, and each report used looks like a legible lab report (``>= q_doc``);
* **decline** only for objective failures the patient fixes by uploading again: not a lab report
  (``P(not a report) >= p_not_report``), unreadable, a required result missing, a result too old, another
  person's report. Each only when the fields behind it are validated and confident (for "missing": when
  every upload was read well enough to be sure it is not there). A clinical finding never declines;
* **review** everything else, with every reason found.

A decline lists every reason found; the patient is shown the fixable ones. A clinical finding beside a fixable
failure (an INR of 1.6 and no platelet count) goes to review, not decline: the case is clinically sensitive,
so staff see it while the number is still held, and can ask for the missing report themselves.

Several uploads: each analyte is taken from one upload, the patient's own report before another person's,
then the most recent collection date, then the most confident read. Uploads confidently not a report or
unreadable are set aside; they explain a missing result but do not stand in the way of an approval that
the other uploads carry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from screening.pipeline.rules import FAIL_CODES, RULE_CODES, RuleOutcome, RuleSet, evaluate
from screening.pipeline.types import Extraction, to_json
from screening.pipeline.validate import (
    VALIDATE_CODES,
    VALIDATE_VERSION,
    Fact,
    Issue,
    PatientFacts,
    Validation,
    patient_facts,
    validate,
)

DECIDE_VERSION = "1.0.0"

# Codes this step adds to those of validation and rules.
DECIDE_CODES = frozenset({"not_a_lab_report", "unreadable", "document_quality", "low_confidence"})
# Every reason code a decision can carry (screening/reasons.py has a message for each; a test checks).
ALL_CODES = VALIDATE_CODES | RULE_CODES | DECIDE_CODES
# What a patient can fix by uploading a different file; the only codes that may decline automatically.
FIXABLE_CODES = FAIL_CODES | frozenset(
    {"not_a_lab_report", "unreadable", "identity_name_mismatch", "identity_sex_mismatch"}
)

Outcome = Literal["approve", "decline", "review"]
DocumentClass = Literal["good", "uncertain", "not_report", "unreadable"]

# Facts derived from another analyte's row follow that row when uploads are merged.
_DERIVED_FROM = {"egfr_recomputed": "creatinine"}


@dataclass(frozen=True)
class Thresholds:
    """The operating points; the audit record stores them with every decision."""

    t_field: float = 0.95  # P(field correct) needed to act on a field automatically
    q_doc: float = 0.9  # P(lab report) and P(legible) needed to approve on a document
    p_not_report: float = 0.98  # P(not a lab report) needed to decline a document as not a report
    p_unreadable: float = 0.98  # P(illegible) needed to decline a document as unreadable


@dataclass(frozen=True)
class Reason:
    """One reason behind a decision: the code, its values, whether re-uploading fixes it, the fields."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)
    fixable: bool = False
    fields: tuple[str, ...] = ()
    rule: str = ""


@dataclass(frozen=True)
class CriticalField:
    """A value a decision rested on, shown to the patient to confirm ("creatinine 88 µmol/L, 2026-11-20")."""

    name: str  # the fact: an analyte code, or egfr_recomputed
    value: Any
    unit: str
    collected_on: dt.date | None
    sources: tuple[str, ...]  # upload-qualified field keys ("0/analyte:creatinine")
    upload: int | None
    confidence: float | None  # the lowest P(correct) of its read fields; None when all are derived


@dataclass(frozen=True)
class UploadSummary:
    """How one upload was judged, for the audit record: its class, scores, identity and every issue found."""

    document: DocumentClass
    p_lab_report: float
    p_legible: float
    identity: str  # match / mismatch / unverified, or "" when the upload was set aside unread
    issues: tuple[Issue, ...]


@dataclass(frozen=True)
class Decision:
    """The outcome with every reason, the rule outcomes and values it rests on, and the versions behind it."""

    outcome: Outcome
    reasons: tuple[Reason, ...]
    rule_outcomes: tuple[RuleOutcome, ...]
    ruleset: str  # exam@version
    ruleset_version: str
    critical_fields: tuple[CriticalField, ...]
    documents: tuple[DocumentClass, ...]  # per upload
    thresholds: Thresholds
    uploads: tuple[UploadSummary, ...] = ()
    version: str = DECIDE_VERSION
    validate_version: str = VALIDATE_VERSION

    @property
    def reason_codes(self) -> list[str]:
        """The distinct reason codes in order of first appearance (for the review queue)."""
        return list(dict.fromkeys(r.code for r in self.reasons))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict for the audit record (dates as ISO strings)."""
        data: dict[str, Any] = to_json(self)
        data["reason_codes"] = self.reason_codes
        return data


def classify_document(p_lab_report: float, p_legible: float, thresholds: Thresholds) -> DocumentClass:
    """Where one upload stands, from the document model's two probabilities.

    >>> t = Thresholds()
    >>> classify_document(0.01, 0.99, t), classify_document(0.99, 0.01, t), classify_document(0.95, 0.95, t)
    ('not_report', 'unreadable', 'good')
    >>> classify_document(0.5, 0.95, t)
    'uncertain'
    """
    if 1.0 - p_lab_report >= thresholds.p_not_report:
        return "not_report"
    if 1.0 - p_legible >= thresholds.p_unreadable:
        return "unreadable"
    if p_lab_report >= thresholds.q_doc and p_legible >= thresholds.q_doc:
        return "good"
    return "uncertain"


class _Confidence:
    """P(correct) per upload-qualified field key; a missing key counts as not confident (0.0)."""

    def __init__(
        self, confidences: Mapping[str, float] | Sequence[Mapping[str, float]], uploads: int
    ) -> None:
        self._per_upload = confidences if isinstance(confidences, Sequence) else None
        self._flat = confidences if isinstance(confidences, Mapping) else {}
        self._uploads = uploads

    def of(self, ref: str) -> float:
        if ref.startswith("patient:"):
            return 1.0  # the booking's own profile, real-name verified
        upload_text, _, key = ref.partition("/")
        upload = int(upload_text)
        if self._per_upload is not None:
            return float(self._per_upload[upload].get(key, 0.0)) if upload < len(self._per_upload) else 0.0
        if ref in self._flat:
            return float(self._flat[ref])
        # A bare key ("analyte:creatinine") is unambiguous only when there is a single upload.
        return float(self._flat.get(key, 0.0)) if self._uploads == 1 else 0.0


def _split(ref: str) -> tuple[int | None, str]:
    if ref.startswith("patient:") or "/" not in ref:
        return None, ref
    upload, _, key = ref.partition("/")
    return int(upload), key


def _merge_facts(
    extractions: Sequence[Extraction],
    validations: Sequence[Validation | None],
    patient: PatientFacts,
    confidence: _Confidence,
) -> tuple[dict[str, Fact], dict[str, int]]:
    """One fact per name across uploads, and for each analyte code the upload its row was taken from.

    Per analyte, the row comes from one upload: another person's report last, then the most recent collection
    date, then the most confident read. Facts derived from a row (eGFR from creatinine) come with it.
    """
    facts: dict[str, Fact] = dict(patient_facts(patient))
    chosen: dict[str, int] = {}
    codes = {a.code for i, e in enumerate(extractions) if validations[i] is not None for a in e.analytes}
    for code in sorted(codes):
        candidates = []
        for i, extraction in enumerate(extractions):
            validation = validations[i]
            row = extraction.analyte(code)
            if validation is None or row is None:
                continue
            day = (
                validation.facts["collected_on"].value if "collected_on" in validation.facts else dt.date.min
            )
            score = (confidence.of(f"{i}/analyte:{code}"), row.score)
            candidates.append((validation.identity != "mismatch", day, score, -i, i))
        best = max(candidates)[-1]
        chosen[code] = best
        best_validation = validations[best]
        assert best_validation is not None  # noqa: S101 -- candidates only come from validated uploads
        for name, fact in best_validation.facts.items():
            if name == code or _DERIVED_FROM.get(name) == code:
                facts[name] = replace(fact, upload=best)
    return facts, chosen


def _fact_codes(names: Sequence[str]) -> set[str]:
    return {_DERIVED_FROM.get(n, n) for n in names} | ({"egfr"} if "egfr_recomputed" in names else set())


def decide(
    *,
    ruleset: RuleSet,
    extractions: Sequence[Extraction],
    patient: PatientFacts,
    answers: Mapping[str, bool | None],
    visit_date: dt.date,
    today: dt.date,
    confidences: Mapping[str, float] | Sequence[Mapping[str, float]],
    document_scores: Sequence[tuple[float, float]],
    thresholds: Thresholds | None = None,
) -> Decision:
    """Decide one booking's screening from all of its uploads.

    ``confidences`` holds P(correct) per field: either one mapping per upload keyed by field key
    (``analyte:creatinine``, ``collected_on``, ``patient_name``), or one mapping keyed by upload-qualified
    keys (``0/analyte:creatinine``); bare keys in a single mapping count only when there is one upload.
    ``document_scores`` holds ``(p_lab_report, p_legible)`` per upload. ``today`` is the hospital's date;
    result windows count back from ``visit_date``.
    """
    t = thresholds or Thresholds()
    if len(document_scores) != len(extractions):
        raise ValueError(f"{len(extractions)} extractions but {len(document_scores)} document scores")
    confidence = _Confidence(confidences, len(extractions))

    # 1. Which uploads to read at all: a confident "not a report" or "unreadable" contributes nothing.
    documents = tuple(classify_document(p, q, t) for p, q in document_scores)
    validations: list[Validation | None] = [
        validate(e, patient=patient, today=today) if documents[i] in ("good", "uncertain") else None
        for i, e in enumerate(extractions)
    ]

    # 2. One fact per name across uploads, then the rules.
    facts, chosen = _merge_facts(extractions, validations, patient, confidence)
    outcomes = evaluate(ruleset, facts=facts, answers=answers, visit_date=visit_date)

    reasons: list[Reason] = []
    declinable: list[Reason] = []  # objective, fixable, confident
    blocking_fail = False  # a failure that could not be confirmed: review, not decline

    def confident(refs: Sequence[str]) -> bool:
        return all(confidence.of(r) >= t.t_field for r in refs)

    def validated(refs: Sequence[str]) -> bool:
        for ref in refs:
            upload, key = _split(ref)
            validation = validations[upload] if upload is not None else None
            if upload is not None and (validation is None or not validation.ok(key)):
                return False
        return True

    excluded = [i for i, d in enumerate(documents) if d in ("not_report", "unreadable")]
    uncertain = [i for i, d in enumerate(documents) if d == "uncertain"]

    # 3. Failures: declinable only when the fields (or, for a missing result, the documents) are sure.
    for outcome in outcomes:
        if outcome.result != "fail":
            continue
        reason = Reason(outcome.reason, outcome.params, True, outcome.fields, outcome.rule)
        reasons.append(reason)
        if outcome.reason == "result_expired":
            # Too old is a matter of the collection date alone; a doubtful value does not make it younger.
            dates = [r for r in outcome.fields if _split(r)[1] == "collected_on"]
            uploads = {_split(r)[0] for r in dates}
            sure = bool(dates) and validated(dates) and confident(dates)
            sure = sure and all(documents[u] == "good" for u in uploads if u is not None)
            if sure:
                declinable.append(reason)
            else:
                blocking_fail = True
            continue
        # A missing result: was a row for it read but not usable, or may a poor document hide it?
        rule = next(r for r in ruleset.rules if r.id == outcome.rule)
        codes = _fact_codes(rule.facts)
        unusable = [(code, upload) for code, upload in chosen.items() if code in codes]
        for code, row_upload in unusable:
            validation = validations[row_upload]
            assert validation is not None  # noqa: S101 -- chosen rows come from validated uploads
            check = validation.checks.get(f"analyte:{code}")
            issues = check.issues if check is not None else ()
            reasons.extend(
                Reason(i.code, i.params, i.code in FIXABLE_CODES, (f"{row_upload}/{i.key}",), outcome.rule)
                for i in issues
            )
        for i in uncertain:
            reasons.append(Reason("document_quality", {"upload": i, "p": list(document_scores[i])}))
        if unusable or uncertain:
            blocking_fail = True
        else:
            declinable.append(reason)

    # 4. Uploads that were set aside explain a missing result; they are fixable by uploading the right file.
    for i in excluded:
        code = "not_a_lab_report" if documents[i] == "not_report" else "unreadable"
        reasons.append(Reason(code, {"upload": i}, True, ()))

    # 5. Every field a rule used (pass or not) must be validated and confident; the reports they come
    # from must be good and the patient's own.
    used = [r for o in outcomes for r in o.fields]
    used_uploads = sorted({u for u in (_split(r)[0] for r in used) if u is not None})
    for outcome in outcomes:
        if outcome.result == "review":
            reasons.append(Reason(outcome.reason, outcome.params, False, outcome.fields, outcome.rule))
    seen: set[str] = set()
    for ref in used:
        if ref in seen or ref.startswith("patient:"):
            continue
        seen.add(ref)
        upload, key = _split(ref)
        validation = validations[upload] if upload is not None else None
        if validation is None:
            continue
        check = validation.checks.get(key)
        if check is not None and check.issues:
            reasons.extend(
                Reason(i.code, i.params, False, (f"{upload}/{i.key}",))
                for i in check.issues
                if not any(r.code == i.code and r.fields == (f"{upload}/{i.key}",) for r in reasons)
            )
        elif check is None or not check.present:
            reasons.append(
                Reason(
                    "collection_date_missing" if key == "collected_on" else "value_unreadable",
                    {},
                    False,
                    (ref,),
                )
            )
        if confidence.of(ref) < t.t_field:
            reasons.append(
                Reason("low_confidence", {"field": ref, "p": round(confidence.of(ref), 3)}, False, (ref,))
            )
    for upload in used_uploads:
        validation = validations[upload]
        assert validation is not None  # noqa: S101 -- used fields come from validated uploads
        name_ref = f"{upload}/patient_name"
        identity_checks = [
            validation.checks[k]
            for k in ("patient_name", "patient_sex", "patient_age")
            if k in validation.checks
        ]
        for check in identity_checks:
            for issue in check.issues:
                ref = f"{upload}/{issue.key}"
                reason = Reason(
                    issue.code, {**issue.params, "upload": upload}, issue.code in FIXABLE_CODES, (ref,)
                )
                reasons.append(reason)
                if issue.code in FIXABLE_CODES:
                    if confident([ref]) and documents[upload] == "good":
                        declinable.append(reason)
                    else:
                        blocking_fail = True
        if "patient_name" not in validation.checks:
            reasons.append(Reason("identity_unverified", {"upload": upload}, False, (name_ref,)))
        elif validation.identity == "match" and not confident([name_ref]):
            reasons.append(
                Reason(
                    "low_confidence",
                    {"field": name_ref, "p": round(confidence.of(name_ref), 3)},
                    False,
                    (name_ref,),
                )
            )
        if documents[upload] != "good":
            reasons.append(
                Reason("document_quality", {"upload": upload, "p": list(document_scores[upload])}, False)
            )

    # 6. The outcome. Uploads set aside do not stand in the way of an approval the other uploads carry.
    set_aside = ("not_a_lab_report", "unreadable")
    clinical = any(o.result == "review" for o in outcomes)
    if declinable and not blocking_fail and not clinical:
        result: Outcome = "decline"
    elif all(r.code in set_aside for r in reasons) and all(o.result == "pass" for o in outcomes):
        result = "approve"
        reasons = []
    else:
        result = "review"
    # One reason per code and fields (a field's issue can be reached through several rules), fixable first:
    # those are what the patient is shown.
    unique: dict[tuple[str, tuple[str, ...], str], Reason] = {}
    for r in reasons:
        unique.setdefault((r.code, r.fields, repr(sorted(r.params.items()))), r)
    reasons = sorted(unique.values(), key=lambda r: not r.fixable)
    return Decision(
        outcome=result,
        reasons=tuple(reasons),
        rule_outcomes=tuple(outcomes),
        ruleset=ruleset.id,
        ruleset_version=ruleset.version,
        critical_fields=_critical_fields(facts, used, confidence),
        documents=documents,
        thresholds=t,
        uploads=tuple(
            UploadSummary(
                documents[i],
                document_scores[i][0],
                document_scores[i][1],
                v.identity if v is not None else "",
                v.issues if v is not None else (),
            )
            for i, v in enumerate(validations)
        ),
    )


def _critical_fields(
    facts: Mapping[str, Fact], used: Sequence[str], confidence: _Confidence
) -> tuple[CriticalField, ...]:
    """The facts whose own value field a rule used, for the patient to confirm."""
    used_set = set(used)
    out = []
    for name, fact in facts.items():
        refs = fact.refs()
        if fact.upload is None or not refs or refs[0] not in used_set:
            continue
        read = [r for r in refs if not r.startswith("patient:")]
        out.append(
            CriticalField(
                name=name,
                value=fact.value,
                unit=fact.unit,
                collected_on=fact.collected_on,
                sources=refs,
                upload=fact.upload,
                confidence=min((confidence.of(r) for r in read), default=None),
            )
        )
    return tuple(out)
