"""Step 2 of the screening pipeline: turn a page's text segments into result rows and header fields.

``structure(text)`` rebuilds the table rows of every page, maps row names to catalogue analytes, and parses
each row's value, comparator, flag, unit and reference range, plus the header fields (dates, hospital,
patient name, sex, age). Pure Python, no Django. Every field keeps the box and the lowest reader score of
the segments it came from.

>>> from screening.pipeline.types import Box, PageText, Segment, TextResult
>>> def seg(text, x0, y0, x1, y1):
...     return Segment(text, 0.99, Box(1, x0, y0, x1, y1))
>>> page = PageText(1, "ocr", 1654, 2338, (
...     seg("采样时间：2026-11-20 08:31", 40, 100, 420, 140),
...     seg("肌酐 Creatinine", 40, 300, 300, 340), seg("362↑", 480, 302, 560, 338),
...     seg("µmol/L", 640, 301, 760, 339), seg("57-111", 900, 300, 1000, 340)))
>>> ex = structure(TextResult((page,), {}))
>>> row = ex.analyte("creatinine")
>>> row.value, row.flag, row.unit, row.ref_low, row.ref_high, ex.collected_on.value.isoformat()
(362.0, 'H', 'umol/L', 57.0, 111.0, '2026-11-20')
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from screening.pipeline.catalogue import AnalyteDef, catalogue, ignore_names, normalize_unit, to_canonical
from screening.pipeline.types import (
    Analyte,
    Box,
    Comparator,
    Extraction,
    Field,
    Flag,
    PageText,
    Segment,
    TextResult,
    UnnamedRow,
)

PARSER_VERSION = "structure-3"

# Full-width ASCII forms (＜ ～ － ： （ ） ０-９ …) to ASCII, one character for one, so offsets keep.
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

REPORT_TYPE_CODES: dict[str, frozenset[str]] = {
    "renal_function": frozenset({"creatinine", "urea", "uric_acid", "egfr", "cystatin_c"}),
    "coagulation": frozenset({"pt", "inr", "aptt", "fibrinogen", "d_dimer"}),
    "blood_count": frozenset({"wbc", "rbc", "hgb", "plt"}),
    "pregnancy": frozenset({"hcg"}),
    "liver_function": frozenset(
        {"alt", "ast", "tbil", "dbil", "ibil", "ggt", "alp", "tp", "alb", "glb", "ag_ratio", "tba"}
    ),
    "thyroid_function": frozenset({"tsh", "ft3", "ft4", "t3", "t4", "tgab", "tpoab"}),
    "lipid_panel": frozenset({"tc", "tg", "hdl_c", "ldl_c", "apoa1", "apob", "lpa"}),
    "glucose_metabolism": frozenset({"hba1c"}),
    "cardiac_markers": frozenset({"ctni", "ctnt", "ck", "ck_mb", "myo", "bnp", "nt_probnp", "ldh"}),
    "inflammation": frozenset({"crp", "hs_crp", "pct", "esr", "il6"}),
    "electrolytes": frozenset({"chloride", "calcium", "magnesium", "phosphate", "co2"}),
    "urinalysis": frozenset(
        {
            "urine_ph",
            "urine_sg",
            "urine_protein",
            "urine_glucose",
            "urine_ketones",
            "urine_blood",
            "urine_leukocytes",
            "urine_nitrite",
        }
    ),
}
# Names a urinalysis shares with blood tests (葡萄糖 GLU, 白细胞 LEU, 红细胞 ERY): on a page that is a
# urinalysis, or where the result is a dipstick grade, they are the urine rows.
URINE_ALIASES = {"glucose": "urine_glucose", "wbc": "urine_leukocytes", "rbc": "urine_blood"}
KEYWORDS = ("检验", "报告", "参考区间", "参考范围", "参考值", "结果", "项目", "单位", "标本", "样本", "医院")

_NUM = r"\d+(?:\.\d+)?"
_CMP = r"<=|>=|≤|≥|≦|≧|<|>"
_FLAG = r"↑↑|↓↓|↑|↓|H|L|偏高|偏低"
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?|\.\d+"  # 1,250.5 | 88 | 5.2 | 5,2 | .5
_VALUE_TOKEN = re.compile(rf"^(?P<cmp>{_CMP})?(?P<num>{_NUMBER})(?P<flag>{_FLAG})?(?P<rest>.*)$")
# A comparator starts a token even without a space before it ("ml/min/1.73m2>=90" is a unit and a range);
# arrows are tokens of their own ("13.84↑mmol/L" is a value, a flag and a unit).
_TOKEN = re.compile(rf"[↑↓]+|(?:{_CMP})?[^\s<>≤≥≦≧↑↓]+|(?:{_CMP})")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_FLAG_TOKEN = re.compile(rf"^(?:{_FLAG}|高|低)$")
# Word and dipstick results: 阴性 / 阳性 / 弱阳性, ±, 1+ .. 4+, + .. ++++, (-), NEG / POS, 微量 (trace).
_QUALITATIVE = re.compile(
    r"^(阴性|阳性|弱阳性|可疑|极微量|微量|NEG|POS|Neg|Pos|neg|pos|Negative|Positive|Trace|trace|±|\+/-|\+-"
    r"|[1-4]\+|\+{1,4}|\(-\)|\(±\)|\(\+{1,4}\)|-)"
)
# Words of header, footer and column-title cells: a row whose label has one is no result row.
_NOT_A_RESULT = re.compile(
    r"姓\s*名|性\s*别|年\s*龄|科\s*室|病\s*历|床\s*号|标\s*本|样\s*本|送\s*检|申\s*请|采\s*样|采\s*集|接\s*收|报\s*告"
    r"|检\s*验|审\s*核|备\s*注|日\s*期|时\s*间|电\s*话|条\s*码|编\s*号|序\s*号|项\s*目|结\s*果|单\s*位|参\s*考|医\s*院"
    r"|医\s*生|诊\s*断|第.{0,3}页|:"
)
_RANGE = re.compile(rf"(?P<lo>{_NUM})\s*(?:-|–|—|~|〜|至|--)\s*(?P<hi>{_NUM})")
_LIMIT = re.compile(rf"(?P<cmp>{_CMP})\s*(?P<v>{_NUM})")
# the day may run into the time when OCR drops the space ("2026-11-1509:19")
_DATE = re.compile(
    r"(?P<y>(?:19|20)\d\d)\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})(?:(?!\d)|(?=\d{1,2}:\d\d))"
)
_COMPACT_DATE = re.compile(r"(?P<y>20\d\d)(?P<m>[01]\d)(?P<d>[0-3]\d)(?!\d)")
_COLLECTED = re.compile(r"(?:采\s*样|采\s*集|取\s*样|留\s*样)\s*(?:时\s*间|日\s*期)")
_REPORTED = re.compile(r"报\s*告\s*(?:时\s*间|日\s*期)")
_NEXT_LABEL = re.compile(r"[\u4e00-\u9fff]{1,4}\s*(?:时\s*间|日\s*期)")
_NAME_LABEL = re.compile(r"(?<!单位)(?<!医院)(?<!项目)姓\s*名\s*:?")
_SEX = re.compile(r"性\s*别\s*:?\s*(?P<v>男|女)")
# an age in months, weeks or days ("8月", "3个月", "20天") is under a year: 0 years
_AGE = re.compile(r"年\s*龄\s*:?\s*(?P<v>\d{1,3})\s*(?P<u>岁|Y|y|years?|yrs?|个月|月|周|天|日)?")
_AGE_LOOSE = re.compile(r"(?<!\d)(?P<v>\d{1,3})\s*岁")
_HOSPITAL = re.compile(
    r"(?P<v>[\u4e00-\u9fffA-Za-z0-9()·]{2,40}?(?:医院|卫生院|保健院|医学中心|卫生服务中心|医学检验所|检验中心))"
)
_LABEL_WORDS = re.compile(
    r"性\s*别|年\s*龄|科\s*室|病\s*历|床\s*号|标\s*本|样\s*本|送\s*检|门\s*诊|住\s*院|条\s*码|ID|就诊|卡号|编号|电话"
)


@dataclass(frozen=True)
class _Cell:
    text: str  # full-width forms folded to ASCII
    score: float
    box: Box | None


@dataclass(frozen=True)
class _Row:
    """One rebuilt text row: its cells left to right, joined with two spaces into ``text``."""

    cells: tuple[_Cell, ...]
    text: str
    cell_of: tuple[int, ...]  # cell index of every character of ``text`` (-1 for the joins)

    @classmethod
    def of(cls, cells: Sequence[_Cell]) -> _Row:
        parts: list[str] = []
        owner: list[int] = []
        for index, cell in enumerate(cells):
            if index:
                parts.append("  ")
                owner += [-1, -1]
            parts.append(cell.text)
            owner += [index] * len(cell.text)
        return cls(tuple(cells), "".join(parts), tuple(owner))

    def cells_in(self, start: int, end: int) -> list[_Cell]:
        indexes = sorted({i for i in self.cell_of[start:end] if i >= 0})
        return [self.cells[i] for i in indexes]


def structure(text: TextResult) -> Extraction:
    """The analytes and header fields read from ``text`` (all pages), with reader statistics in ``quality``.

    Rows of analytes outside the catalogue are kept in ``unnamed`` as read (label, value, unit); a result
    printed twice gives two rows, in page order.
    """
    rows = [row for page in text.pages for row in rebuild_rows(page)]
    parsed = [_parse_analytes(row) for row in rows]
    analytes = _urine_aliases(tuple(a for named, _ in parsed for a in named))
    return Extraction(
        analytes=analytes,
        unnamed=tuple(u for _, unnamed in parsed for u in unnamed),
        collected_on=_find_date(rows, _COLLECTED),
        reported_on=_find_date(rows, _REPORTED),
        hospital=_find_hospital(rows),
        patient_name=_find_name(rows),
        patient_sex=_find_simple(rows, _SEX, lambda v: "M" if v == "男" else "F"),
        patient_age=_find_age(rows),
        report_type=report_type(a.code for a in analytes),
        quality=_quality(text, rows, analytes),
        parser_version=PARSER_VERSION,
    )


def _urine_aliases(analytes: tuple[Analyte, ...]) -> tuple[Analyte, ...]:
    """Blood-test codes read from a urinalysis turned into the urine rows they are (see ``URINE_ALIASES``).

    A row is a urine row when its result is a dipstick grade (葡萄糖 阴性), or when the page carries at
    least two urine-only rows (比重, 酸碱度, 亚硝酸盐, ...): then 葡萄糖 5.5 mmol/L there is urine glucose.
    """
    urine_only = {a.code for a in analytes if a.code.startswith("urine_")}
    urinalysis = len(urine_only) >= 2
    out: list[Analyte] = []
    for a in analytes:
        alias = URINE_ALIASES.get(a.code)
        if alias is None or not (urinalysis or a.value is None):
            out.append(a)
            continue
        entry = catalogue()[alias]
        out.append(
            dataclasses.replace(
                a,
                code=alias,
                loinc=entry.loinc,
                name_en=entry.name_en,
                name_zh=entry.name_zh,
                value_canonical=None if a.value is None else to_canonical(alias, a.value, a.unit),
                unit_canonical=entry.unit,
            )
        )
    return tuple(out)


def report_type(codes: Iterable[str]) -> str:
    """The report type whose analytes were found most often (ties: the order of ``REPORT_TYPE_CODES``)."""
    found = set(codes)
    counts = {name: len(found & members) for name, members in REPORT_TYPE_CODES.items()}
    best = max(counts, key=lambda name: counts[name])
    return best if counts[best] else ""


# --- rows ------------------------------------------------------------------------------------------------


def rebuild_rows(page: PageText) -> list[_Row]:
    """The page's text rows, top to bottom.

    Segments without a box (a PDF text layer, one line each) are one row each, split into cells at runs of
    two or more spaces. OCR boxes are chained along their baseline:

    1. Estimate the page's skew from each box's nearest right-hand neighbour (median slope).
    2. Take boxes from left to right; append each to the row whose last box, extended along the skew,
       passes closest to the box's centre (within half a line height) and ends left of it; else start a
       row. Two tables side by side thus share rows where their lines align; the row parser splits a row
       at each analyte name.
    3. Order rows by their skew-corrected height on the page.
    """
    rows: list[_Row] = []
    boxed = [s for s in page.segments if s.box is not None]
    for seg in page.segments:
        if seg.box is None:
            cells = [
                _Cell(part, seg.score, None) for part in re.split(r"\s{2,}", _fold(seg.text).strip()) if part
            ]
            if cells:
                rows.append(_Row.of(cells))
    if not boxed:
        return rows
    line_h = statistics.median(_height(s) for s in boxed)
    slope = _skew(boxed, line_h)
    chains: list[list[Segment]] = []
    for seg in sorted(boxed, key=lambda s: (_box(s).x0, _box(s).y0)):
        cx, cy = _centre(seg)
        best: list[Segment] | None = None
        best_d = 0.5 * line_h
        for chain in chains:
            last = _box(chain[-1])
            # to the right of the chain's end; neighbouring cells may overlap a little (wide text shrunk)
            overlap = max(0.3 * line_h, 0.5 * min(last.x1 - last.x0, _box(seg).x1 - _box(seg).x0))
            if _box(seg).x0 < last.x1 - overlap or _box(seg).x0 <= last.x0:
                continue
            lx, ly = _centre(chain[-1])
            d = abs(cy - (ly + slope * (cx - lx)))
            if d < best_d:
                best, best_d = chain, d
        if best is None:
            chains.append([seg])
        else:
            best.append(seg)
    chains.sort(key=lambda c: _centre(c[0])[1] - slope * _centre(c[0])[0])
    rows.extend(_Row.of([_Cell(_fold(s.text).strip(), s.score, s.box) for s in c]) for c in chains)
    return rows


def _skew(segments: Sequence[Segment], line_h: float) -> float:
    slopes: list[float] = []
    for seg in segments:
        box = _box(seg)
        cx, cy = _centre(seg)
        nearest: tuple[float, float] | None = None
        for other in segments:
            ob = _box(other)
            gap = ob.x0 - box.x1
            if other is seg or gap < -0.3 * line_h or gap > 12 * line_h:
                continue
            ox, oy = _centre(other)
            if abs(oy - cy) > line_h or ox <= cx:
                continue
            if nearest is None or gap < nearest[0]:
                nearest = (gap, (oy - cy) / (ox - cx))
        if nearest is not None and abs(nearest[1]) < 0.15:
            slopes.append(nearest[1])
    return statistics.median(slopes) if len(slopes) >= 3 else 0.0


def _box(seg: Segment) -> Box:
    assert seg.box is not None  # noqa: S101 -- callers pass boxed segments only
    return seg.box


def _centre(seg: Segment) -> tuple[float, float]:
    box = _box(seg)
    return (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2


def _height(seg: Segment) -> float:
    box = _box(seg)
    return max(1.0, box.y1 - box.y0)


def _fold(text: str) -> str:
    return text.translate(_FULLWIDTH)


# --- analyte rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Match:
    start: int
    end: int
    code: str  # "" for a name of a row outside the catalogue


@functools.cache
def _name_patterns() -> tuple[tuple[re.Pattern[str], str, int], ...]:
    """(pattern, code, weight) for every name; ``code`` is "" for the ignored look-alike names."""
    patterns: list[tuple[re.Pattern[str], str, int]] = []

    def add(name: str, code: str) -> None:
        name = _fold(name)
        if re.search(r"[\u4e00-\u9fff]", name):
            # whitespace-tolerant: OCR and PDF layout text put spaces between CJK characters
            body = r"\s*".join(re.escape(ch) for ch in name if not ch.isspace())
            patterns.append((re.compile(body, re.IGNORECASE), code, len(name)))
        else:
            flags = re.IGNORECASE if sum(ch.isalpha() for ch in name) > 2 else 0
            body = r"\s*".join(re.escape(part) for part in name.split())
            # A name of three or more characters ending in a letter may run into its value ("NT-proBNP56.6"
            # in a PDF text layer), not into more letters (HbA1c is no Hb) or a digit-letter run; a short
            # name (K, Na: "K20261120" is a bar code) or one ending in a digit (T3) may not.
            glued_ok = len(name) >= 3 and not name[-1].isdigit()
            after = r"(?![A-Za-z/])(?!\d+[A-Za-z])" if glued_ok else r"(?![A-Za-z0-9/])"
            pattern = re.compile(rf"(?<![A-Za-z0-9/^]){body}{after}", flags)
            patterns.append((pattern, code, len(name)))

    for code, entry in catalogue().items():
        for name in (*entry.names_zh, *entry.names_en, *entry.ocr_variants):
            add(name, code)
    names_zh, names_en = ignore_names()
    for name in (*names_zh, *names_en):
        add(name, "")
    return tuple(patterns)


def _find_names(text: str) -> list[_Match]:
    """Non-overlapping name matches, longest names first, in text order; neighbours merged.

    Two names side by side with nothing but spaces or brackets between them name one row: same-code names
    merge, and where a Chinese name sits beside an English abbreviation of another code, the Chinese name
    decides (血小板压积 PCT is the plateletcrit, 降钙素原 PCT the procalcitonin; 白细胞 LEU stays a white-cell
    row until the urine rule looks at it).
    """
    found: list[tuple[int, int, int, str]] = []
    for pattern, code, weight in _name_patterns():
        found.extend((weight, m.start(), m.end(), code) for m in pattern.finditer(text))
    found.sort(key=lambda f: (-f[0], f[1]))
    taken: list[_Match] = []
    for _, start, end, code in found:
        if all(end <= t.start or start >= t.end for t in taken):
            taken.append(_Match(start, end, code))
    taken.sort(key=lambda m: m.start)
    paired: list[_Match] = []
    for match in taken:
        prev = paired[-1] if paired else None
        if prev and prev.code != match.code and re.fullmatch(r"[\s()\[\]]*", text[prev.end : match.start]):
            prev_cjk = bool(_CJK.search(text[prev.start : prev.end]))
            if prev_cjk != bool(_CJK.search(text[match.start : match.end])):
                paired[-1] = _Match(prev.start, match.end, prev.code if prev_cjk else match.code)
                continue
        paired.append(match)
    taken = paired
    merged: list[_Match] = []
    for match in taken:
        prev = merged[-1] if merged else None
        between = text[prev.end : match.start] if prev else ""
        if prev and prev.code == match.code and not re.search(r"\d", between) and len(between) < 24:
            merged[-1] = _Match(prev.start, match.end, prev.code)
        else:
            merged.append(match)
    return merged


def _parse_analytes(row: _Row) -> tuple[list[Analyte], list[UnnamedRow]]:
    """The catalogue rows of one text row, and the result rows in it that have no catalogue name.

    Unnamed rows are looked for where no catalogue row is: before the first name, after the last token a
    catalogue row used, and from an ignored look-alike name (甲状腺球蛋白 is not 球蛋白) to the next name.
    """
    matches = _find_names(row.text)
    out: list[Analyte] = []
    unnamed: list[UnnamedRow] = []
    free_from = 0  # start of the text no catalogue row has used
    for index, match in enumerate(matches):
        if not match.code:  # a look-alike name: its row is read as unnamed, with any words before it
            continue
        end = matches[index + 1].start if index + 1 < len(matches) else len(row.text)
        unnamed += _unnamed_in(row, free_from, match.start)
        analyte, used_to = _parse_one(row, match, end)
        if analyte is not None:
            out.append(analyte)
            free_from = used_to
        else:
            free_from = end  # a named row without a readable value: nothing in it is another row
    unnamed += _unnamed_in(row, free_from, len(row.text))
    return out, unnamed


def _value_like(token: str) -> bool:
    m = _VALUE_TOKEN.match(token)
    if m and (not m.group("rest") or normalize_unit(m.group("rest"))):
        return True
    return _grade(token)


def _grade(token: str) -> bool:
    """Whether ``token`` is a word or dipstick result (阴性, 2+, 阴性(-)), not the start of a word (+PCT)."""
    q = _QUALITATIVE.match(token)
    return bool(q and (q.end() == len(token) or not re.match(r"[\w\u4e00-\u9fff]", token[q.end()])))


def _unnamed_in(row: _Row, start: int, end: int) -> list[UnnamedRow]:
    """Result rows between ``start`` and ``end`` whose names the catalogue does not know.

    A result row is a label (one to four words with a Chinese character or two Latin letters, none a header
    word or a ``label:`` cell) followed by a value (a number or a grade) and at least a unit, a reference
    range or a grade: a page number, a date or a sample number does not make one.
    """
    if start >= end:
        return []
    tokens: list[tuple[str, int]] = []
    for m in _TOKEN.finditer(row.text[start:end]):
        # a label run into its value ("小而密低密度脂蛋白胆固醇0.31" in a PDF text layer): two tokens
        glued = re.fullmatch(rf"(.*[\u4e00-\u9fff])({_NUMBER}.*)", m.group())
        if glued and _value_like(glued.group(2)):
            tokens += [
                (glued.group(1), start + m.start()),
                (glued.group(2), start + m.start() + glued.start(2)),
            ]
        else:
            tokens.append((m.group(), start + m.start()))
    found: list[UnnamedRow] = []
    k = 0
    while k < len(tokens):
        j = k
        while j < len(tokens) and not _value_like(tokens[j][0]):
            j += 1
        label_tokens = [tok for tok, _ in tokens[k:j]]
        if j >= len(tokens):
            break
        if not label_tokens:
            k = j + 1
            continue
        label = " ".join(label_tokens[-4:])
        value_tok = tokens[j][0]
        tail = _row_tail(tokens[j + 1 :])
        k = j + 1 + len(tail)
        if len(label_tokens) > 4 or len(label) > 40 or _NOT_A_RESULT.search(label):
            continue
        if not (_CJK.search(label) or re.search(r"[A-Za-z]{2}", label)):
            continue
        value_m = _VALUE_TOKEN.match(value_tok)
        unit_raw = ""
        value = value_tok
        if value_m and value_m.group("rest") and not _QUALITATIVE.match(value_tok):
            unit_raw = value_m.group("rest")
            value = value_tok[: -len(unit_raw)]
        flag_m = re.fullmatch(rf"(.*?\d)(?:{_FLAG})", value)
        if flag_m and value_m:
            value = flag_m.group(1)
        rest = [tok for tok, _ in tail if not _FLAG_TOKEN.match(tok)]
        if not unit_raw:
            _, unit_raw, used = _find_unit([(tok, 0) for tok in rest], set())
            rest = [tok for n, tok in enumerate(rest) if n not in used]
        qualitative = not (value_m and (not value_m.group("rest") or normalize_unit(value_m.group("rest"))))
        if not (unit_raw or _reference(" ".join(rest))[2] or qualitative):
            continue
        found.append(UnnamedRow(label=label, value=value, unit=unit_raw))
    return found


def _parse_one(row: _Row, match: _Match, end: int) -> tuple[Analyte | None, int]:
    """Parse the text after one analyte name (up to the next name): value, flag, unit, reference range.

    The value must be the first token after the name, allowing only a bracketed note (``(酶法)``), one
    token of Latin letters (an English name the catalogue does not know) or a fragment of the analyte's
    own Chinese name (OCR read ``CREA 肌酐`` as ``CREA 肌``), and a lone comparator before it: a later
    number belongs to something else (a footnote such as "eGFR 采用 CKD-EPI 2021 公式"). Also returns where
    the text the row used ends (what follows may be another, unnamed, row).
    """
    entry = catalogue()[match.code]
    start = match.end
    note = re.match(r"\s*[(\[][^)\]]{0,40}[)\]]", row.text[start:end])  # (酶法), (CKD-EPI 2021), (s)
    if note:
        start += note.end()
    tokens = [(m.group(), start + m.start()) for m in _TOKEN.finditer(row.text[start:end])]
    i = 0
    comparator = ""
    value_m: re.Match[str] | None = None
    skipped_word = False
    while i < len(tokens):
        tok = tokens[i][0]
        if re.fullmatch(_CMP, tok):
            comparator = tok
            i += 1
            continue
        value_m = _VALUE_TOKEN.match(tok)
        if value_m and (not value_m.group("rest") or normalize_unit(value_m.group("rest"))):
            break
        value_m = None
        # an English name the catalogue does not know; OCR may read its O as 0 (A-TP0)
        english = re.fullmatch(r"[A-Za-z](?:[A-Za-z.()\-][A-Za-z0-9.()\-]*)?", tok)
        stray = len(tok) == 1 and _CJK.match(tok) and not _FLAG_TOKEN.match(tok)  # OCR noise: "享 4.19"
        if not skipped_word and (english or stray or _name_fragment(tok, entry)):
            skipped_word = True
            i += 1
            continue
        break
    if value_m is None:
        return _qualitative(row, match, entry.code, tokens[i:] if i < len(tokens) else [])
    value_tok, value_at = tokens[i]
    rest_tokens = _row_tail(tokens[i + 1 :])
    last_tok, last_at = rest_tokens[-1] if rest_tokens else (value_tok, value_at)
    used_to = last_at + len(last_tok)
    comparator = _comparator(value_m.group("cmp") or comparator)
    number = value_m.group("num")
    if "," in number:
        # "1,234" groups thousands; "5,2" is a decimal comma misread or printed
        thousands = re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", number)
        number = number.replace(",", "") if thousands else number.replace(",", ".")
    value = float(number)
    flag = _flag(value_m.group("flag") or "")
    unit, unit_raw = "", ""
    if value_m.group("rest"):
        unit_raw = value_m.group("rest")
        unit = normalize_unit(unit_raw)
    used: set[int] = set()
    if not flag:
        for k, (tok, _) in enumerate(rest_tokens):
            if _FLAG_TOKEN.match(tok):
                flag = _flag(tok)
                used.add(k)
                break
            glued = normalize_unit(tok[1:]) if k == 0 and tok[:1] in ("H", "L") and not unit else ""
            if glued:  # "69.8 LmL/min/1.73m²": a letter flag run into the unit
                flag, unit, unit_raw = _flag(tok[0]), glued, tok[1:]
                used.add(k)
                break
    if not unit:
        unit, unit_raw, unit_used = _find_unit(rest_tokens, used)
        used |= unit_used
    ref_text = " ".join(tok for k, (tok, _) in enumerate(rest_tokens) if k not in used)
    ref_low, ref_high, ref_raw = _reference(ref_text)
    value_cells = row.cells_in(value_at, value_at + len(value_tok))
    name_cells = row.cells_in(match.start, match.end)
    score = min(c.score for c in (*value_cells, *name_cells))
    analyte = Analyte(
        code=entry.code,
        loinc=entry.loinc,
        name_en=entry.name_en,
        name_zh=entry.name_zh,
        raw_name=row.text[match.start : match.end],
        value=value,
        value_raw=value_tok if not value_m.group("rest") else value_tok[: -len(value_m.group("rest"))],
        comparator=comparator,
        flag=flag,
        unit=unit,
        unit_raw=unit_raw,
        value_canonical=to_canonical(entry.code, value, unit),
        unit_canonical=entry.unit,
        ref_low=ref_low,
        ref_high=ref_high,
        ref_raw=ref_raw,
        score=round(score, 4),
        box=_union([c.box for c in value_cells]),
    )
    return analyte, used_to


def _qualitative(
    row: _Row, match: _Match, code: str, tokens: list[tuple[str, int]]
) -> tuple[Analyte | None, int]:
    """A row whose result is a word or a grade (阴性, 阳性, ±, 2+), kept with ``value=None`` and the grade
    as printed in ``value_raw`` (values are numbers; a grade is never turned into one); else no row at all.
    The grade's own flag and reference (阴性) after it belong to the row."""
    if not tokens or not _grade(tokens[0][0]):
        return None, match.end
    entry = catalogue()[code]
    tok, at = tokens[0]
    if re.match(r"[\w\u4e00-\u9fff]", row.text[at + len(tok) : at + len(tok) + 1]):
        return None, match.end  # the "+" of a title "(CRP+PCT)" runs into the next name: no grade
    tail = _row_tail(tokens[1:])
    flag: Flag = next((_flag(t) for t, _ in tail if _FLAG_TOKEN.match(t)), "")
    ref_tokens = [t for t, _ in tail if not _FLAG_TOKEN.match(t) and not normalize_unit(t)]
    unit_tok = next((t for t, _ in tail if normalize_unit(t)), "")
    last_tok, last_at = tail[-1] if tail else (tok, at)
    cells = row.cells_in(at, at + len(tok)) + row.cells_in(match.start, match.end)
    analyte = Analyte(
        code=code,
        loinc=entry.loinc,
        name_en=entry.name_en,
        name_zh=entry.name_zh,
        raw_name=row.text[match.start : match.end],
        value=None,
        value_raw=tok,
        flag=flag,
        unit=normalize_unit(unit_tok),
        unit_raw=unit_tok,
        unit_canonical=entry.unit,
        ref_raw=" ".join(ref_tokens)[:40],
        score=round(min(c.score for c in cells), 4),
        box=_union([c.box for c in row.cells_in(at, at + len(tok))]),
    )
    return analyte, last_at + len(last_tok)


def _row_tail(tokens: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The tokens after a value that still belong to its row: up to a word that starts another row.

    A row the catalogue does not know (乳酸脱氢酶 LDH in a side-by-side table) must not lend its flag or
    range: the tail stops at a word (Chinese, or two Latin letters) that is neither a unit, nor a flag, nor
    the end of a unit (``mg/L FEU``), and after the reference range at anything that is not a unit or flag.
    """
    tail: list[tuple[str, int]] = []
    for tok, at in tokens:
        kind_ok = bool(_FLAG_TOKEN.match(tok) or normalize_unit(tok) or normalize_unit(tok[1:]))
        if tail and not kind_ok and normalize_unit(f"{tail[-1][0]} {tok}"):
            kind_ok = True
        if not kind_ok and re.search(r"[\u4e00-\u9fff]|^[A-Za-z]{2,}", tok):
            break
        if not kind_ok and tail and _reference(" ".join(t for t, _ in tail))[2]:
            break
        tail.append((tok, at))
    return tail


def _name_fragment(token: str, entry: AnalyteDef) -> bool:
    """Whether ``token`` is part of one of the analyte's Chinese names (and has no digit)."""
    if re.search(r"\d", token) or not re.search(r"[\u4e00-\u9fff]", token):
        return False
    return any(token in name for name in entry.names_zh)


def _find_unit(tokens: list[tuple[str, int]], used: set[int]) -> tuple[str, str, set[int]]:
    """The first run of up to three tokens that spells a known unit (``mg/L FEU`` is two tokens)."""
    for k in range(len(tokens)):
        for width in (3, 2, 1):
            window = range(k, min(k + width, len(tokens)))
            if len(window) < width or any(j in used for j in window):
                continue
            raw = " ".join(tokens[j][0] for j in window)
            unit = normalize_unit(raw)
            if unit:
                return unit, raw, set(window)
    return "", "", set()


def _reference(text: str) -> tuple[float | None, float | None, str]:
    """(low, high, raw) of the first reference range in ``text``: ``57-111``, ``57~111``, ``>=90``, ``<5.0``.

    A bound written with ``<`` or ``>`` is exclusive; the bounds do not say so, ``ref_raw`` does.
    """
    rng = _RANGE.search(text)
    lim = _LIMIT.search(text)
    if rng and (lim is None or rng.start() <= lim.start()):
        return float(rng.group("lo")), float(rng.group("hi")), rng.group()
    if lim:
        bound = float(lim.group("v"))
        if lim.group("cmp") in ("<", "<=", "≤", "≦"):
            return None, bound, lim.group()
        return bound, None, lim.group()
    return None, None, ""


def _comparator(text: str) -> Comparator:
    mapping: dict[str, Comparator] = {"<": "<", ">": ">", "<=": "<=", ">=": ">=", "≤": "<=", "≥": ">="}
    mapping |= {"≦": "<=", "≧": ">="}
    return mapping.get(text, "")


def _flag(text: str) -> Flag:
    if text in ("↑", "↑↑", "H", "偏高", "高"):
        return "H"
    if text in ("↓", "↓↓", "L", "偏低", "低"):
        return "L"
    return ""


def _union(boxes: Sequence[Box | None]) -> Box | None:
    real = [b for b in boxes if b is not None]
    if not real:
        return None
    return Box(
        page=real[0].page,
        x0=min(b.x0 for b in real),
        y0=min(b.y0 for b in real),
        x1=max(b.x1 for b in real),
        y1=max(b.y1 for b in real),
    )


# --- header fields ---------------------------------------------------------------------------------------


def _field(row: _Row, value: object, start: int, end: int, label_start: int | None = None) -> Field:
    cells = row.cells_in(start, end)
    scored = cells + (row.cells_in(label_start, label_start + 1) if label_start is not None else [])
    return Field(
        value=value,
        raw=row.text[start:end],
        score=round(min((c.score for c in scored), default=0.0), 4),
        box=_union([c.box for c in cells]),
    )


def _find_date(rows: Sequence[_Row], label: re.Pattern[str]) -> Field | None:
    """The first valid date printed within a short distance after ``label`` (same row), before the next
    label: "采样时间:  接收时间:2026-11-20" has no collection date."""
    for row in rows:
        for lab in label.finditer(row.text):
            window = row.text[lab.end() : lab.end() + 40]
            window = window[: m.start()] if (m := _NEXT_LABEL.search(window)) else window
            found = _DATE.search(window) or _COMPACT_DATE.search(window)
            if found is None:
                continue
            try:
                day = dt.date(int(found.group("y")), int(found.group("m")), int(found.group("d")))
            except ValueError:
                continue
            return _field(row, day, lab.end() + found.start(), lab.end() + found.end(), lab.start())
    return None


def _find_simple(rows: Sequence[_Row], pattern: re.Pattern[str], convert: object) -> Field | None:
    for row in rows:
        m = pattern.search(row.text)
        if m:
            value = convert(m.group("v")) if callable(convert) else m.group("v")
            return _field(row, value, m.start("v"), m.end("v"), m.start())
    return None


def _find_age(rows: Sequence[_Row]) -> Field | None:
    """Age in whole years after 年龄 (or a bare ``45岁``); months, weeks or days give 0."""
    found: Field | None = None
    for row in rows:
        m = _AGE.search(row.text)
        if m:
            years = 0 if (m.group("u") or "") in ("个月", "月", "周", "天", "日") else int(m.group("v"))
            found = _field(row, years, m.start("v"), m.end(), m.start())
            break
    found = found or _find_simple(rows, _AGE_LOOSE, int)
    if found is not None and not 0 <= found.value <= 130:
        return None
    return found


def _find_name(rows: Sequence[_Row]) -> Field | None:
    """The patient's name after 姓名 (the label must not be 医生姓名 of a doctor), cut at the next label."""
    for row in rows:
        for lab in _NAME_LABEL.finditer(row.text):
            if re.search(r"(医生|医师|检验者|审核者|操作者)\s*$", row.text[: lab.start()]):
                continue
            tail = row.text[lab.end() :]
            stop = _LABEL_WORDS.search(tail)
            tail = tail[: stop.start()] if stop else tail
            m = re.match(r"\s*(?P<v>[\u4e00-\u9fff·*＊○×?]{2,8}|[A-Za-z][A-Za-z .'\-]{1,40}[A-Za-z])", tail)
            if m:
                start = lab.end() + m.start("v")
                return _field(row, m.group("v").strip(), start, lab.end() + m.end("v"), lab.start())
    return None


def _find_hospital(rows: Sequence[_Row]) -> Field | None:
    for row in rows:
        m = _HOSPITAL.search(row.text)
        if m:
            name = re.sub(r"^(报告单位|送检单位|医院名称|单位)\s*:?", "", m.group("v"))
            return _field(row, name, m.start("v"), m.end("v"))
    return None


# --- quality ---------------------------------------------------------------------------------------------


def _quality(text: TextResult, rows: Sequence[_Row], analytes: Sequence[Analyte]) -> dict[str, float]:
    """Reader statistics for the document-type and legibility model."""
    segments = [s for p in text.pages for s in p.segments]
    scores = sorted(s.score for s in segments)
    chars = "".join("".join(s.text.split()) for s in segments)
    heights = [s.box.y1 - s.box.y0 for s in segments if s.box is not None]
    n_chars = len(chars)
    quality: dict[str, float] = {
        "n_pages": float(len(text.pages)),
        "n_segments": float(len(segments)),
        "n_rows": float(len(rows)),
        "mean_score": float(statistics.fmean(scores)) if scores else 0.0,
        "min_score": float(scores[0]) if scores else 0.0,
        "p10_score": float(scores[int(0.1 * (len(scores) - 1))]) if scores else 0.0,
        "n_analytes": float(len(analytes)),
        "n_analytes_with_unit": float(sum(1 for a in analytes if a.unit)),
        "n_analytes_with_ref": float(sum(1 for a in analytes if a.ref_raw)),
        "n_chars": float(n_chars),
        "digit_ratio": sum(ch.isdigit() for ch in chars) / n_chars if n_chars else 0.0,
        "cjk_ratio": sum("\u4e00" <= ch <= "\u9fff" for ch in chars) / n_chars if n_chars else 0.0,
        "keyword_hits": float(sum(word in chars for word in KEYWORDS)),
        "width_px": float(text.pages[0].width_px) if text.pages else 0.0,
        "height_px": float(text.pages[0].height_px) if text.pages else 0.0,
        "median_line_height_px": float(statistics.median(heights)) if heights else 0.0,
        "rotation_deg": float(text.pages[0].rotation_deg) if text.pages else 0.0,
        "pdf_text": float(any(p.source == "pdf_text" for p in text.pages)),
    }
    quality.update({f"kw_{word}": float(word in chars) for word in KEYWORDS})
    return quality
