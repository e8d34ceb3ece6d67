"""Fixed-order numeric features for the two scoring models.

``document_features(text, extraction)`` describes one uploaded file (all its pages) for the document-type and
legibility model; ``field_features(key, extraction, page_stats)`` describes one extracted field for the
field-confidence model. By default the vector follows ``DOC_FEATURES`` / ``FIELD_FEATURES``; a trained
model stores the names it was trained on (``feature_names_in_``) and is always given the vector in that order
(``names=``), so a feature may be *added* here without breaking older artefacts. Never change what an
existing name means or remove one that a committed artefact uses.

Field keys are the ones the decision step uses: ``"analyte:<code>"``, ``"collected_on"``, ``"reported_on"``,
``"patient_name"``, ``"patient_sex"``, ``"patient_age"``.

Every feature is a pure function of its inputs (no clock, no randomness), so the same inputs always give the
same bytes, and the checksum of the vector can be stored with each decision.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from screening.pipeline.types import Analyte, Extraction, Field, TextResult

FloatArray = npt.NDArray[np.float64]

FIELD_KEYS_FIXED: Final = ("collected_on", "reported_on", "patient_name", "patient_sex", "patient_age")

# Words printed on nearly every Chinese lab report; a hit is a whole-document substring match.
REPORT_KEYWORDS: Final = {
    "kw_jianyan": ("检验",),
    "kw_baogao": ("报告",),
    "kw_cankao": ("参考区间", "参考范围", "参考值"),
    "kw_jieguo": ("结果",),
    "kw_danwei": ("单位",),
    "kw_biaoben": ("标本", "样本"),
}
OTHER_KEYWORDS: Final = ("姓名", "性别", "年龄", "科室", "医院", "采样", "采集", "项目", "送检", "审核")
# A table header names at least two of these in one line of text.
HEADER_WORDS: Final = ("项目", "结果", "单位", "参考", "提示", "代号", "名称")

DOC_FEATURES: Final[tuple[str, ...]] = (
    "n_pages",
    "log_n_segments",  # log1p of the number of text segments over all pages
    "log_n_chars",  # log1p of non-space characters
    "mean_score",  # mean reader score of the segments (1.0 for a PDF text layer)
    "min_score",
    "p10_score",
    "p50_score",
    "share_score_lt_0_8",  # share of segments read with score < 0.8
    "digit_ratio",  # digits / non-space characters
    "cjk_ratio",  # CJK ideographs / non-space characters
    "latin_ratio",  # ASCII letters / non-space characters
    *REPORT_KEYWORDS,  # 1.0 when the keyword group occurs anywhere
    "n_other_keywords",  # how many of OTHER_KEYWORDS occur
    "table_header",  # 1.0 when one segment (or one text row) names two or more header words
    "log_n_analytes",
    "share_analytes_with_unit",
    "share_analytes_with_ref",
    "share_analytes_flag_consistent",  # of rows with a value and a range, flag agrees with range
    "n_dates",  # collected_on and reported_on found (0..2)
    "n_identity",  # patient name, sex, age found (0..3)
    "report_type_known",
    "log_megapixels",  # of the first page
    "aspect_ratio",  # height / width of the first page
    "rotation_applied",  # 1.0 when any page was turned before reading
    "source_pdf_text",  # 1.0 when a PDF text layer was read (no OCR)
)

FIELD_FEATURES: Final[tuple[str, ...]] = (
    "kind_analyte",
    "kind_date",
    "kind_name",
    "kind_sex",
    "kind_age",
    "score",  # the reader's score for the segment(s) the value came from
    "score_lt_0_95",
    "raw_len",  # characters in the raw value, spaces removed
    "n_digits",
    "has_decimal",
    "n_decimal_places",
    "trailing_one_no_flag",  # value ends in '1' after 1+ digits and no flag was read (merged arrow ↑ → 1)
    "strip_one_needs_flag",  # ...and without that last '1' the value lies outside the range (so ↑/↓ was due)
    "confusable_chars",  # characters OCR confuses with digits: ε l I | O o S s B Z g q
    "value_parsed",  # a value was parsed at all
    "plausible",  # value inside the plausibility range of its analyte / field kind
    "log_ref_distance",  # |log10(value / nearest range bound)| when outside the range, else 0 (max 3)
    "has_ref",
    "flag_present",
    "flag_inconsistent",  # flag disagrees with the reference range (H below high, none above high, ...)
    "unit_recognised",
    "canonical_known",  # a conversion to the canonical unit was known
    # Geometry. The extraction keeps the box of the value only (not of the analyte's name), so the
    # name-to-value distance is approximated by where the value sits across the page: in a table the result
    # column has a steady position, and a value taken from the wrong cell (the range, the next row) does not.
    "value_x_share",  # left edge of the value box / page width
    "box_width_share",  # value box width / page width (a value glued to its neighbours is wide)
    "box_height_ratio",  # box height / the page's median line height (merged rows are tall)
    "page_mean_score",
    "page_p10_score",
    # Added in 1.1.0. For the creatinine and eGFR rows: the printed eGFR against CKD-EPI 2021 recomputed from
    # the printed creatinine, age and sex. Laboratories also print CKD-EPI 2009 or the Chinese MDRD, a few
    # percent apart; a misread digit in either value usually moves them much further apart.
    "egfr_checked",  # 1.0 when both values, age and sex were read
    "egfr_log_mismatch",  # |ln(printed eGFR / recomputed)|, capped at 2
)

# Plausibility ranges in each analyte's canonical unit (§4 of the reference and common lab practice). A value
# outside is possible but rare enough that it more often means a misread (lost decimal point, merged arrow).
PLAUSIBLE_CANONICAL: Final[dict[str, tuple[float, float]]] = {
    "creatinine": (20.0, 2000.0),  # µmol/L
    "egfr": (2.0, 200.0),  # mL/min/1.73m2
    "urea": (0.5, 60.0),  # mmol/L
    "uric_acid": (50.0, 1200.0),  # µmol/L
    "inr": (0.5, 10.0),
    "pt": (7.0, 120.0),  # s
    "aptt": (15.0, 180.0),  # s
    "fibrinogen": (0.3, 12.0),  # g/L
    "d_dimer": (0.01, 80.0),  # mg/L FEU
    "plt": (1.0, 2000.0),  # 10^9/L
    "wbc": (0.1, 300.0),  # 10^9/L
    "rbc": (0.5, 9.0),  # 10^12/L
    "hgb": (20.0, 250.0),  # g/L
    "hct": (0.05, 0.75),  # L/L
    "hcg": (0.0, 500000.0),  # IU/L
    "glucose": (0.5, 60.0),  # mmol/L
    "hba1c": (3.0, 20.0),  # %
    "alt": (1.0, 5000.0),  # U/L
    "ast": (1.0, 5000.0),  # U/L
    "potassium": (1.5, 9.0),  # mmol/L
    "sodium": (100.0, 180.0),  # mmol/L
    "albumin": (10.0, 60.0),  # g/L
    "tbil": (1.0, 800.0),  # µmol/L
}
# Without a table row, a value further than this factor outside its printed range is implausible.
REF_FACTOR_PLAUSIBLE: Final = 20.0

CONFUSABLE: Final = frozenset("εlI|OoSsBZgq")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_TRAILING_ONE = re.compile(r"^[<>≤≥=]*\s*(\d+(?:\.\d+)?)1$")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def page_stats(text: TextResult) -> dict[str, float]:
    """Reader statistics of a whole file, as ``field_features`` expects them.

    Keys: ``mean_score``, ``p10_score``, ``median_line_height_px``, ``width_px`` (of the first page).

    >>> from screening.pipeline.types import Box, PageText, Segment, TextResult
    >>> seg = Segment("肌酐 88", 0.9, Box(1, 0, 0, 100, 20))
    >>> page_stats(TextResult((PageText(1, "ocr", 800, 1000, (seg,)),), {}))["median_line_height_px"]
    20.0
    """
    scores = [s.score for p in text.pages for s in p.segments]
    heights = [s.box.y1 - s.box.y0 for p in text.pages for s in p.segments if s.box is not None]
    return {
        "mean_score": statistics.fmean(scores) if scores else 0.0,
        "p10_score": float(np.percentile(scores, 10)) if scores else 0.0,
        "median_line_height_px": float(statistics.median(heights)) if heights else 0.0,
        "width_px": float(text.pages[0].width_px) if text.pages else 0.0,
    }


def _flag_consistent(a: Analyte) -> bool | None:
    """Whether the printed flag agrees with the printed range; ``None`` when there is nothing to compare."""
    if a.value is None or (a.ref_low is None and a.ref_high is None):
        return None
    above = a.ref_high is not None and a.value > a.ref_high
    below = a.ref_low is not None and a.value < a.ref_low
    expected = "H" if above else "L" if below else ""
    return a.flag == expected


def document_features(
    text: TextResult, extraction: Extraction, names: Sequence[str] = DOC_FEATURES
) -> FloatArray:
    """The feature vector of one file, in the order of ``names`` (default ``DOC_FEATURES``).

    >>> from screening.pipeline.types import Extraction, PageText, Segment, TextResult
    >>> lines = (Segment("检验报告单", 0.99, None), Segment("项目 结果 单位", 0.98, None))
    >>> page = PageText(1, "ocr", 1654, 2338, lines)
    >>> x = document_features(TextResult((page,), {}), Extraction(analytes=()))
    >>> x.shape == (len(DOC_FEATURES),), float(x[DOC_FEATURES.index("table_header")])
    (True, 1.0)
    """
    segments = [s for p in text.pages for s in p.segments]
    scores = np.array([s.score for s in segments], dtype=np.float64)
    joined = "".join("".join(s.text.split()) for s in segments)
    n_chars = len(joined)
    n_digits = sum(c.isdigit() for c in joined)
    n_cjk = len(_CJK.findall(joined))
    n_latin = sum(c.isascii() and c.isalpha() for c in joined)

    values: dict[str, float] = {
        "n_pages": float(len(text.pages)),
        "log_n_segments": math.log1p(len(segments)),
        "log_n_chars": math.log1p(n_chars),
        "mean_score": float(scores.mean()) if scores.size else 0.0,
        "min_score": float(scores.min()) if scores.size else 0.0,
        "p10_score": float(np.percentile(scores, 10)) if scores.size else 0.0,
        "p50_score": float(np.percentile(scores, 50)) if scores.size else 0.0,
        "share_score_lt_0_8": float((scores < 0.8).mean()) if scores.size else 0.0,
        "digit_ratio": _ratio(n_digits, n_chars),
        "cjk_ratio": _ratio(n_cjk, n_chars),
        "latin_ratio": _ratio(n_latin, n_chars),
    }
    for name, words in REPORT_KEYWORDS.items():
        values[name] = float(any(w in joined for w in words))
    values["n_other_keywords"] = float(sum(w in joined for w in OTHER_KEYWORDS))
    values["table_header"] = float(
        any(sum(w in s.text for w in HEADER_WORDS) >= 2 for s in segments) or _row_has_header(text)
    )

    analytes = extraction.analytes
    n = len(analytes)
    consistent = [c for c in (_flag_consistent(a) for a in analytes) if c is not None]
    values["log_n_analytes"] = math.log1p(n)
    values["share_analytes_with_unit"] = _ratio(sum(bool(a.unit) for a in analytes), n)
    values["share_analytes_with_ref"] = _ratio(
        sum(a.ref_low is not None or a.ref_high is not None for a in analytes), n
    )
    values["share_analytes_flag_consistent"] = _ratio(sum(consistent), len(consistent))
    values["n_dates"] = float((extraction.collected_on is not None) + (extraction.reported_on is not None))
    values["n_identity"] = float(
        sum(f is not None for f in (extraction.patient_name, extraction.patient_sex, extraction.patient_age))
    )
    values["report_type_known"] = float(bool(extraction.report_type))
    first = text.pages[0] if text.pages else None
    values["log_megapixels"] = math.log1p(first.width_px * first.height_px / 1e6) if first else 0.0
    values["aspect_ratio"] = _ratio(first.height_px, first.width_px) if first else 0.0
    values["rotation_applied"] = float(any(p.rotation_deg % 360 for p in text.pages))
    values["source_pdf_text"] = float(any(p.source == "pdf_text" for p in text.pages))
    return _select(values, names)


def _select(values: Mapping[str, float], names: Sequence[str]) -> FloatArray:
    unknown = [n for n in names if n not in values]
    if unknown:
        raise ValueError(f"features this code does not compute: {unknown}")
    return np.array([values[name] for name in names], dtype=np.float64)


def _row_has_header(text: TextResult) -> bool:
    """OCR often cuts a header into one box per word: group boxes whose vertical centres are within half a
    line height and look for two header words in one such row."""
    for page in text.pages:
        heads = [
            ((s.box.y0 + s.box.y1) / 2, max(s.box.y1 - s.box.y0, 1.0))
            for s in page.segments
            if s.box is not None and any(w in s.text for w in HEADER_WORDS)
        ]
        for i, (yc, h) in enumerate(heads):
            if any(abs(yc - yc2) < h / 2 for yc2, _ in heads[i + 1 :]):
                return True
    return False


def field_value(key: str, extraction: Extraction) -> Analyte | Field | None:
    """The extracted object behind a field key, or ``None`` when it was not found."""
    if key.startswith("analyte:"):
        return extraction.analyte(key.removeprefix("analyte:"))
    if key in FIELD_KEYS_FIXED:
        found: Field | None = getattr(extraction, key)
        return found
    raise ValueError(f"unknown field key {key!r}")


def field_keys(extraction: Extraction) -> list[str]:
    """The keys of the fields in ``extraction``: analytes first (reading order, first row per code)."""
    seen: dict[str, None] = {}
    for a in extraction.analytes:
        seen.setdefault(f"analyte:{a.code}", None)
    keys = list(seen)
    keys += [k for k in FIELD_KEYS_FIXED if getattr(extraction, k) is not None]
    return keys


def _value_shape(raw: str) -> dict[str, float]:
    compact = "".join(raw.split())
    number = _NUMBER.search(compact)
    decimals = len(number.group().partition(".")[2]) if number else 0
    return {
        "raw_len": float(len(compact)),
        "n_digits": float(sum(c.isdigit() for c in compact)),
        "has_decimal": float(number is not None and "." in number.group()),
        "n_decimal_places": float(decimals),
        "confusable_chars": float(sum(c in CONFUSABLE for c in compact)),
    }


def _plausible_range(a: Analyte) -> tuple[float, float] | None:
    if a.value_canonical is not None and a.code in PLAUSIBLE_CANONICAL:
        return PLAUSIBLE_CANONICAL[a.code]
    return None


def _analyte_features(a: Analyte) -> dict[str, float]:
    values = _value_shape(a.value_raw)
    compact = "".join(a.value_raw.split())
    trailing = _TRAILING_ONE.match(compact)
    no_flag = a.flag == "" and not any(c in compact for c in "↑↓HL")
    values["trailing_one_no_flag"] = float(trailing is not None and no_flag)
    needs_flag = False
    if trailing is not None and no_flag:
        stripped = float(trailing.group(1))
        needs_flag = (a.ref_high is not None and stripped > a.ref_high) or (
            a.ref_low is not None and stripped < a.ref_low
        )
    values["strip_one_needs_flag"] = float(needs_flag)
    values["value_parsed"] = float(a.value is not None)

    plausible = 0.0
    distance = 0.0
    table = _plausible_range(a)
    if a.value is not None:
        if table is not None and a.value_canonical is not None:
            plausible = float(table[0] <= a.value_canonical <= table[1])
        elif a.ref_low is not None or a.ref_high is not None:
            low = (a.ref_low / REF_FACTOR_PLAUSIBLE) if a.ref_low else -math.inf
            high = (a.ref_high * REF_FACTOR_PLAUSIBLE) if a.ref_high else math.inf
            plausible = float(low <= a.value <= high)
        else:
            plausible = 0.5  # nothing to judge against
        distance = _log_ref_distance(a)
    values["plausible"] = plausible
    values["log_ref_distance"] = distance
    values["has_ref"] = float(a.ref_low is not None or a.ref_high is not None)
    values["flag_present"] = float(a.flag != "")
    consistent = _flag_consistent(a)
    values["flag_inconsistent"] = float(consistent is False)
    values["unit_recognised"] = float(bool(a.unit))
    values["canonical_known"] = float(a.value_canonical is not None)
    return values


def _log_ref_distance(a: Analyte) -> float:
    if a.value is None or a.value <= 0:
        return 0.0
    if a.ref_high is not None and a.ref_high > 0 and a.value > a.ref_high:
        return min(math.log10(a.value / a.ref_high), 3.0)
    if a.ref_low is not None and a.ref_low > 0 and a.value < a.ref_low:
        return min(math.log10(a.ref_low / a.value), 3.0)
    return 0.0


def _plain_field_features(key: str, f: Field, extraction: Extraction) -> dict[str, float]:
    raw = f.raw
    values = _value_shape(raw)
    values.update(
        {
            "trailing_one_no_flag": 0.0,
            "strip_one_needs_flag": 0.0,
            "value_parsed": float(f.value is not None),
            "log_ref_distance": 0.0,
            "has_ref": 0.0,
            "flag_present": 0.0,
            "flag_inconsistent": 0.0,
            "unit_recognised": 0.0,
            "canonical_known": 0.0,
        }
    )
    plausible = 0.0
    if key in ("collected_on", "reported_on"):
        plausible = float(_date_plausible(key, extraction))
    elif key == "patient_name":
        name = "".join(str(f.value or "").split())
        plausible = float(2 <= len(name) <= 4 and all(_CJK.match(c) for c in name))
        # letters in a Chinese name are misreads, not digits: count them as confusables instead
        values["confusable_chars"] = float(sum(not _CJK.match(c) for c in name))
    elif key == "patient_sex":
        plausible = float(f.value in ("M", "F"))
    elif key == "patient_age":
        plausible = float(isinstance(f.value, int) and 0 <= f.value <= 110)
    values["plausible"] = plausible
    return values


def _date_plausible(key: str, extraction: Extraction) -> bool:
    """A date is plausible in 2000..2039 and, when both were read, collected ≤ reported ≤ collected + 60 d."""
    collected = extraction.collected_on.value if extraction.collected_on else None
    reported = extraction.reported_on.value if extraction.reported_on else None
    own = collected if key == "collected_on" else reported
    if own is None or not hasattr(own, "year") or not 2000 <= own.year <= 2039:
        return False
    if collected is not None and reported is not None and hasattr(collected, "toordinal"):
        gap_days = reported.toordinal() - collected.toordinal()
        return bool(0 <= gap_days <= 60)
    return True


def field_features(
    key: str, extraction: Extraction, page_stats: Mapping[str, float], names: Sequence[str] = FIELD_FEATURES
) -> FloatArray:
    """The feature vector of one extracted field, in the order of ``names`` (default ``FIELD_FEATURES``).

    ``page_stats`` comes from ``page_stats(text)``; missing keys fall back to ``extraction.quality`` and then
    to neutral values, so a caller without the page text still gets a vector (with less information).

    >>> from screening.pipeline.types import Analyte, Extraction
    >>> row = Analyte("creatinine", "2160-0", "Creatinine", "肌酐", "肌酐", 391.0, "391", unit="umol/L",
    ...               value_canonical=391.0, ref_low=57.0, ref_high=111.0, score=0.97)
    >>> x = field_features("analyte:creatinine", Extraction(analytes=(row,)), {"mean_score": 0.98})
    >>> names = ("trailing_one_no_flag", "strip_one_needs_flag", "flag_inconsistent")
    >>> [float(x[FIELD_FEATURES.index(n)]) for n in names]
    [1.0, 1.0, 1.0]
    """
    found = field_value(key, extraction)
    if found is None:
        raise ValueError(f"{key} was not extracted")
    kind = (
        "analyte"
        if key.startswith("analyte:")
        else {
            "collected_on": "date",
            "reported_on": "date",
            "patient_name": "name",
            "patient_sex": "sex",
            "patient_age": "age",
        }[key]
    )
    if isinstance(found, Analyte):
        values = _analyte_features(found)
    else:
        values = _plain_field_features(key, found, extraction)
    values.update({f"kind_{k}": float(kind == k) for k in ("analyte", "date", "name", "sex", "age")})
    values["score"] = float(found.score)
    values["score_lt_0_95"] = float(found.score < 0.95)

    quality = extraction.quality
    width = page_stats.get("width_px", quality.get("width_px", 0.0))
    line_h = page_stats.get("median_line_height_px", quality.get("median_line_height_px", 0.0))
    box = found.box
    values["value_x_share"] = _ratio_f(box.x0, width) if box is not None else 0.0
    values["box_width_share"] = _ratio_f(box.x1 - box.x0, width) if box is not None else 0.0
    values["box_height_ratio"] = _ratio_f(box.y1 - box.y0, line_h) if box is not None else 0.0
    values["page_mean_score"] = page_stats.get("mean_score", quality.get("mean_score", found.score))
    values["page_p10_score"] = page_stats.get("p10_score", quality.get("p10_score", found.score))
    checked, mismatch = (
        _egfr_check(extraction) if key in ("analyte:creatinine", "analyte:egfr") else (0.0, 0.0)
    )
    values["egfr_checked"] = checked
    values["egfr_log_mismatch"] = mismatch
    return _select(values, names)


CREATININE_UMOL_PER_MG_DL: Final = 88.4


def ckd_epi_2021(scr_mg_dl: float, age_years: float, female: bool) -> float:
    """eGFR (mL/min/1.73 m²), race-free CKD-EPI 2021 (Inker et al., NEJM 2021).

    >>> round(ckd_epi_2021(1.0, 60, female=False), 1)
    86.2
    """
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = scr_mg_dl / kappa
    egfr = 142 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938**age_years
    return float(egfr * (1.012 if female else 1.0))


def _egfr_check(extraction: Extraction) -> tuple[float, float]:
    creatinine = extraction.analyte("creatinine")
    egfr = extraction.analyte("egfr")
    sex = extraction.patient_sex.value if extraction.patient_sex else None
    age = extraction.patient_age.value if extraction.patient_age else None
    if (
        creatinine is None
        or egfr is None
        or creatinine.value_canonical is None
        or creatinine.value_canonical <= 0
        or egfr.value is None
        or egfr.value <= 0
        or egfr.comparator
        or sex not in ("M", "F")
        or not isinstance(age, int)
        or not 18 <= age <= 110
    ):
        return 0.0, 0.0
    recomputed = ckd_epi_2021(creatinine.value_canonical / CREATININE_UMOL_PER_MG_DL, age, sex == "F")
    return 1.0, min(abs(math.log(egfr.value / recomputed)), 2.0)


def _ratio_f(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0


def reader_scores(text: TextResult, extraction: Extraction) -> tuple[tuple[float, float], dict[str, float]]:
    """Scores without a model: ``((P(lab report), P(legible)), {field key: P(correct)})`` from the reader.

    Each field's reader score stands for its P(correct) and the mean segment score for P(legible);
    P(lab report) is high only when lab rows were read, and never high enough to decline a file as "not a
    report" on its own (that needs the document model).
    """
    fields: dict[str, float] = {}
    for key in field_keys(extraction):
        found = field_value(key, extraction)
        if found is not None:
            fields[key] = float(found.score)
    segments = [segment.score for page in text.pages for segment in page.segments]
    p_legible = float(statistics.fmean(segments)) if segments else 0.0
    p_report = (0.95 if extraction.report_type else 0.6) if extraction.analytes else 0.5
    return (p_report, p_legible), fields
