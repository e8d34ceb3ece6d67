"""Which questionnaire items apply to which patient: pregnancy is asked only of girls and women old enough.

The rules files list every item an exam may ask; an item that cannot apply to the patient (a man or a young
child asked whether they could be pregnant) is neither shown nor required. It is recorded as ``False`` (does
not apply), so the decision sees a complete questionnaire.

>>> import datetime as dt
>>> on = dt.date(2026, 12, 1)
>>> item_applies("possible_pregnancy", sex="M", birth_date=dt.date(1990, 1, 1), on=on)
False
>>> item_applies("possible_pregnancy", sex="F", birth_date=dt.date(2019, 5, 1), on=on)
False
>>> item_applies("possible_pregnancy", sex="F", birth_date=dt.date(2014, 11, 30), on=on)
True
>>> item_applies("diabetes", sex="M", birth_date=dt.date(2019, 5, 1), on=on)
True
"""

from __future__ import annotations

import datetime as dt

PREGNANCY_ITEM = "possible_pregnancy"
PREGNANCY_MIN_AGE_YEARS = 12
# Items asked of some patients only; the others are asked of everyone.
PATIENT_DEPENDENT_ITEMS = frozenset({PREGNANCY_ITEM})


def age_on(birth_date: dt.date, on: dt.date) -> int:
    """Whole years of age on ``on``."""
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def item_applies(item: str, *, sex: str, birth_date: dt.date, on: dt.date) -> bool:
    """Whether ``item`` is asked of a patient of ``sex`` ("F"/"M") born ``birth_date``, for a visit ``on``."""
    if item == PREGNANCY_ITEM:
        return sex == "F" and age_on(birth_date, on) >= PREGNANCY_MIN_AGE_YEARS
    return True
