"""Generated Chinese lab reports with known truth, for tests, the OCR benchmark and model training.

Pure Python (Pillow, numpy, reportlab): no Django, no real patient data. ``make_spec`` draws the truth from a
seed, ``render`` draws it as a clean page, a scan or a phone photo, ``render_pdf`` as a digital PDF;
``make_negative`` gives uploads that are not a readable report. ``python -m screening.synth`` writes a set.

>>> spec = make_spec(1, "coagulation")
>>> spec.report_type, spec.codes[:2]
('coagulation', ('pt', 'inr'))
"""

from .analytes import ANALYTE_CODES, ANALYTES, EXTRA_CODES, ckd_epi_2009, ckd_epi_2021, mdrd_china
from .fonts import FONT_KEYS, FontNotFoundError, font_check
from .negatives import NEGATIVE_KINDS, make_negative
from .render import PAGE_SIZE_PX, VARIANTS, render, render_bytes
from .spec import DEFAULT_TODAY, LAYOUTS, egfr_expected, make_spec
from .truth import REPORT_TYPES, ReportSpec, RowTruth


def render_pdf(spec: ReportSpec, *, text_layer: bool = True) -> bytes:
    """``pdf.render_pdf``, imported on first use: reportlab is a development dependency only."""
    from .pdf import render_pdf as pdf_render_pdf  # local: reportlab is a development dependency only

    return pdf_render_pdf(spec, text_layer=text_layer)


__all__ = [
    "ANALYTES",
    "ANALYTE_CODES",
    "DEFAULT_TODAY",
    "EXTRA_CODES",
    "FONT_KEYS",
    "LAYOUTS",
    "NEGATIVE_KINDS",
    "PAGE_SIZE_PX",
    "REPORT_TYPES",
    "VARIANTS",
    "FontNotFoundError",
    "ReportSpec",
    "RowTruth",
    "ckd_epi_2009",
    "ckd_epi_2021",
    "egfr_expected",
    "font_check",
    "make_negative",
    "make_spec",
    "mdrd_china",
    "render",
    "render_bytes",
    "render_pdf",
]
