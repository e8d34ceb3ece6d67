"""Documented corruptions of reader text, for the field model's training set.

PP-OCRv6 with the line classifier off reads the generator's normal pages almost perfectly, so wrong fields
are made by corrupting the text of a clean reading the way readers are known to fail (screening reference
§1.3: flag arrows merged into the value, flipped short cells, letter/digit confusions; plus lost decimal
points and look-alike digits), then structuring it with the real parser and labelling it against the
generator's truth like any other reading. ``CORRUPTIONS`` lists them; the model card says how many were used.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any, Final

from screening.pipeline.types import Segment, TextResult

DIGIT_CONFUSIONS: Final = {
    "0": "8", "1": "7", "2": "7", "3": "8", "4": "1", "5": "6", "6": "5", "7": "1", "8": "3", "9": "4",
}  # fmt: skip
FLIPPED: Final = {"6": "9", "9": "6", "8": "8", "0": "0", "1": "1"}  # a cell read upside down (cls on)
NAME_CONFUSIONS: Final = "王玉主土士工干千于子孑李季杨扬张弦陈阵刘浏"

CORRUPTIONS: Final = {
    "merge_arrow": "flag arrow read as a trailing 1 glued to the value: '39 ↑' → '391', '8.5 ↓' → '8.51'",
    "drop_decimal": "decimal point lost: '8.55' → '855'",
    "digit_confusion": "one digit read as a look-alike: 3→8, 5→6, 1→7, 0→8 ...",
    "flip": "a short value read upside down by the line classifier: '99' → '66'",
    "letter_confusion": "a digit read as a letter: 0→O, 1→l, 5→S, 3→ε",
    "date_digit": "one digit of a date read as a look-alike",
    "age_digit": "one digit of the age read as a look-alike",
    "name_char": "one character of the patient's name read as a similar character",
}


def _swap_digit(text: str, rng: random.Random, table: dict[str, str]) -> str:
    spots = [i for i, c in enumerate(text) if c in table and table[c] != c]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + table[text[i]] + text[i + 1 :]


def _corrupt_value(seg_text: str, row: Any, kind: str, rng: random.Random) -> str:
    value = str(row.value_text)
    at = seg_text.find(value)
    if at < 0:
        return seg_text
    before, after = seg_text[:at], seg_text[at + len(value) :]
    if kind == "merge_arrow":
        glyph = after.strip()[:1]
        if glyph in ("↑", "↓"):
            return before + value + "1" + after.lstrip()[1:]
        return seg_text
    if kind == "drop_decimal":
        return before + value.replace(".", "", 1) + after if "." in value else seg_text
    if kind == "digit_confusion":
        return before + _swap_digit(value, rng, DIGIT_CONFUSIONS) + after
    if kind == "flip":
        digits = value.replace(".", "")
        if len(digits) > 3 or not all(c in FLIPPED for c in digits):
            return seg_text
        return before + "".join(FLIPPED[c] for c in reversed(value) if c != ".") + after
    if kind == "letter_confusion":
        return before + _swap_digit(value, rng, {"0": "O", "1": "l", "5": "S", "3": "ε"}) + after
    return seg_text


def corrupt(text: TextResult, spec: Any, rng: random.Random) -> tuple[TextResult, list[str]]:
    """A copy of ``text`` with 1–3 segments corrupted as in ``CORRUPTIONS``, and the kinds applied.

    A corrupted segment keeps its reader score half of the time (the flipped cells of §1.3 came with score
    1.000) and gets score × U(0.80, 0.98) otherwise.
    """
    pages = list(text.pages)
    targets: list[tuple[int, int, str, Any]] = []  # page index, segment index, kind, row
    for p, page in enumerate(pages):
        for s, seg in enumerate(page.segments):
            for row in spec.rows:
                if row.value_text in seg.text and any(ch.isdigit() for ch in row.value_text):
                    kinds = ["digit_confusion", "letter_confusion", "flip"]
                    kinds += ["drop_decimal"] if "." in row.value_text else []
                    kinds += (
                        ["merge_arrow"] * 3
                        if row.flag_glyph in ("↑", "↓") and row.flag_glyph in seg.text
                        else []
                    )
                    targets += [(p, s, k, row) for k in kinds]
            if spec.collected_on.isoformat() in seg.text or spec.reported_on.isoformat() in seg.text:
                targets.append((p, s, "date_digit", None))
            if spec.patient_name in seg.text:
                targets.append((p, s, "name_char", None))
            if f"{spec.age_years}岁" in seg.text or seg.text.strip() == str(spec.age_years):
                targets.append((p, s, "age_digit", None))
    if not targets:
        return text, []
    chosen = rng.sample(targets, k=min(len(targets), rng.randint(1, 3)))
    applied = []
    for p, s, kind, row in chosen:
        page = pages[p]
        seg = page.segments[s]
        if kind == "date_digit":
            for date in (spec.collected_on.isoformat(), spec.reported_on.isoformat()):
                if date in seg.text:
                    new_date = date[:5] + _swap_digit(date[5:], rng, DIGIT_CONFUSIONS)
                    new_text = seg.text.replace(date, new_date, 1)
                    break
        elif kind == "name_char":
            name = spec.patient_name
            i = rng.randrange(len(name))
            new_name = name[:i] + rng.choice([c for c in NAME_CONFUSIONS if c != name[i]]) + name[i + 1 :]
            new_text = seg.text.replace(name, new_name, 1)
        elif kind == "age_digit":
            age = str(spec.age_years)
            new_text = seg.text.replace(age, _swap_digit(age, rng, DIGIT_CONFUSIONS), 1)
        else:
            new_text = _corrupt_value(seg.text, row, kind, rng)
        if new_text == seg.text:
            continue
        score = seg.score if rng.random() < 0.5 else round(seg.score * rng.uniform(0.80, 0.98), 4)
        segments = list(page.segments)
        segments[s] = Segment(new_text, score, seg.box)
        pages[p] = replace(page, segments=tuple(segments))
        applied.append(kind)
    return TextResult(pages=tuple(pages), engine=text.engine), applied
