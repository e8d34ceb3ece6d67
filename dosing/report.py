"""The printable course report (PDF, Chinese or English) for the medical record.

ReportLab's built-in CID font STSong-Light (Adobe's Song for simplified Chinese, known to every PDF reader,
so no font file is shipped or embedded) writes the text as Unicode, so the text can be searched, copied and
extracted; the plot is drawn as vector lines from the same curves the page shows.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override
from reportlab.graphics.shapes import Circle, Drawing, Line, Polygon, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from dosing import selectors
from dosing.models import Course
from dosing.wording import model_status_words, regimen_words, status_words, warning_words
from medcard.models import User

FONT = "STSong-Light"
_registered = False


def _font() -> str:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True
    return FONT


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _local(when: datetime | None) -> str:
    return timezone.localtime(when).strftime("%Y-%m-%d %H:%M") if when else "—"


def _plot(
    fit_result: dict[str, Any], case: dict[str, Any], band: tuple[float, float] | None
) -> Drawing | None:
    curves = fit_result.get("curves")
    if not curves or not curves.get("times_h"):
        return None
    width, height = 170 * mm, 70 * mm
    left, bottom = 12 * mm, 8 * mm
    pw, ph = width - left - 4 * mm, height - bottom - 4 * mm
    times = curves["times_h"]
    x0, x1 = times[0], max(times[-1], times[0] + 1)
    values = [v for k in ("individual", "upper", "population") for v in curves.get(k) or [] if v is not None]
    values += [lv["conc_mg_per_l"] for lv in case.get("levels") or []]
    y1 = max([5.0, *values, *(band or (0, 0))]) * 1.1

    def sx(t: float) -> float:
        return left + (t - x0) / (x1 - x0) * pw

    def sy(c: float) -> float:
        return bottom + min(max(c, 0), y1) / y1 * ph

    d = Drawing(width, height)
    d.add(Rect(left, bottom, pw, ph, strokeColor=colors.grey, fillColor=None, strokeWidth=0.5))
    step = 5 if y1 <= 40 else 10 if y1 <= 90 else 20
    c = 0.0
    while c <= y1:
        d.add(Line(left, sy(c), left + pw, sy(c), strokeColor=colors.lightgrey, strokeWidth=0.3))
        d.add(String(left - 2, sy(c) - 2, f"{c:g}", fontName="Helvetica", fontSize=6, textAnchor="end"))
        c += step
    if band:
        d.add(
            Rect(
                left,
                sy(band[0]),
                pw,
                sy(band[1]) - sy(band[0]),
                fillColor=colors.Color(0.2, 0.7, 0.3, 0.15),
                strokeColor=None,
            )
        )
    upper, lower = curves.get("upper") or [], curves.get("lower") or []
    pts: list[float] = []
    for t, u in zip(times, upper, strict=False):
        if u is not None:
            pts += [sx(t), sy(u)]
    for t, lo in reversed(list(zip(times, lower, strict=False))):
        if lo is not None:
            pts += [sx(t), sy(lo)]
    if pts:
        d.add(Polygon(pts, fillColor=colors.Color(0.1, 0.4, 0.8, 0.18), strokeColor=None))
    for key, colour, dash in (
        ("population", colors.grey, [2, 2]),
        ("individual", colors.Color(0.05, 0.3, 0.7), None),
    ):
        line = [
            v
            for t, c in zip(times, curves.get(key) or [], strict=False)
            if c is not None
            for v in (sx(t), sy(c))
        ]
        if line:
            d.add(PolyLine(line, strokeColor=colour, strokeWidth=1.2, strokeDashArray=dash))
    for lv in case.get("levels") or []:
        d.add(
            Circle(
                sx(lv["time"]),
                sy(lv["conc_mg_per_l"]),
                2.2,
                fillColor=colors.Color(0.8, 0.2, 0.1),
                strokeColor=None,
            )
        )
    d.add(String(left, height - 3 * mm, "mg/L", fontName="Helvetica", fontSize=7))
    return d


def course_report_pdf(*, course: Course, language: str, viewer: User | None = None) -> bytes:
    """The report of the course's latest fit and signed regimen (or the unsigned recommendation)."""
    with override(language):
        return _build(course, language)


def _build(course: Course, language: str) -> bytes:
    font = _font()
    base = ParagraphStyle("base", fontName=font, fontSize=9.5, leading=13)
    h1 = ParagraphStyle("h1", parent=base, fontSize=15, leading=20, spaceAfter=4)
    h2 = ParagraphStyle("h2", parent=base, fontSize=11.5, leading=16, spaceBefore=8, spaceAfter=3)
    small = ParagraphStyle("small", parent=base, fontSize=7.5, leading=10, textColor=colors.grey)
    fit = selectors.course_latest_fit(course=course)
    signed = selectors.course_latest_signature(course=course)
    hospital = settings.HOSPITAL_NAME.get(language, settings.HOSPITAL_NAME["zh-hans"])
    story: list[Any] = [
        Paragraph(hospital, base),
        Paragraph(_("Vancomycin dosing report"), h1),
        Paragraph(_("Printed %(when)s") % {"when": _local(timezone.now())}, small),
    ]

    def table(rows: list[list[str]], widths: list[float] | None = None) -> Table:
        t = Table([[Paragraph(str(c), base) for c in row] for row in rows], colWidths=widths, hAlign="LEFT")
        t.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                ]
            )
        )
        return t

    story.append(Paragraph(_("Patient"), h2))
    who = course.patient.masked_name if course.patient is not None else course.initials
    story.append(
        table(
            [
                [_("Patient"), _("Ward / bed"), _("Sex"), _("Age"), _("Weight"), _("Height")],
                [
                    who,
                    f"{course.ward} {course.bed}".strip() or "—",
                    course.get_sex_display(),
                    f"{course.age_years:g} y",
                    f"{course.weight_kg:g} kg",
                    f"{course.height_cm:g} cm" if course.height_cm else "—",
                ],
            ]
        )
    )
    source = course.creatinine_source or _("entered by the pharmacist")
    story.append(
        Paragraph(
            _("Serum creatinine %(value)s %(unit)s on %(date)s (%(source)s).")
            % {
                "value": f"{course.creatinine_value:g}",
                "unit": course.get_creatinine_unit_display(),
                "date": course.creatinine_on,
                "source": source,
            },
            base,
        )
    )
    if course.postmenstrual_age_weeks or course.gestational_age_weeks or course.birth_weight_kg:
        story.append(
            Paragraph(
                _(
                    "Neonate: gestational age %(ga)s weeks, postnatal age %(pna)s days, "
                    "postmenstrual age %(pma)s weeks, birth weight %(bw)s kg."
                )
                % {
                    "ga": _fmt(course.gestational_age_weeks),
                    "pna": _fmt(course.postnatal_age_days),
                    "pma": _fmt(course.postmenstrual_age_weeks),
                    "bw": _fmt(course.birth_weight_kg),
                },
                base,
            )
        )
    story.append(Paragraph(_("Doses given"), h2))
    dose_rows = [[_("Start"), _("Dose (mg)"), _("Infusion (h)"), _("Number of doses"), _("Every (h)")]]
    for d in selectors.course_doses(course=course):
        dose_rows.append(
            [
                _local(d.given_at),
                f"{d.amount_mg:g}",
                f"{d.infusion_h:g}",
                str(d.repeat_count + 1),
                f"{d.repeat_interval_h:g}" if d.repeat_interval_h else "—",
            ]
        )
    story.append(table(dose_rows))
    story.append(Paragraph(_("Measured levels"), h2))
    level_rows = [[_("Drawn at"), _("Level (mg/L)")]]
    level_rows += [
        [_local(lv.drawn_at), f"{lv.conc_mg_per_l:g}"] for lv in selectors.course_levels(course=course)
    ]
    story.append(table(level_rows))
    if fit is not None:
        from dosing.views import target_band  # the page's definition of the band, one place

        result = fit.result
        story.append(Paragraph(_("Fit and forecast"), h2))
        drawing = _plot(result, fit.case, target_band(fit.case))
        if drawing is not None:
            story.append(drawing)
            story.append(
                Paragraph(
                    _(
                        "Blue: individual prediction with its 90% credible band; grey dashes: population; "
                        "red dots: measured levels; green: target."
                    ),
                    small,
                )
            )
        story.append(Paragraph(status_words(result.get("status", ""), result.get("message", "")), base))
        model_rows = [
            [
                _("Model"),
                _("Weight"),
                _("Fit"),
                _("CL (L/h) individual / typical"),
                _("V (L) individual / typical"),
            ]
        ]
        for m in result.get("models") or []:
            p, t = m.get("parameters") or {}, m.get("typical_parameters") or {}
            v_key = "v1_l" if "v1_l" in p else "v_l"
            model_rows.append(
                [
                    m["id"],
                    f"{m['weight']:.2f}",
                    model_status_words(m["status"]),
                    f"{_fmt(p.get('cl_l_per_h'), 2)} / {_fmt(t.get('cl_l_per_h'), 2)}",
                    f"{_fmt(p.get(v_key))} / {_fmt(t.get(v_key))}",
                ]
            )
        story.append(table(model_rows))
        for w in result.get("warnings") or []:
            story.append(Paragraph("• " + warning_words(w).text, base))
    story.append(Paragraph(_("Recommendation"), h2))
    if signed is not None:
        words = regimen_words(
            dose_mg=float(signed.dose_mg),
            interval_h=float(signed.interval_h),
            infusion_h=float(signed.infusion_h),
        )
        story.append(
            Paragraph(
                _("Signed regimen: %(regimen)s, next dose at %(when)s.")
                % {"regimen": words, "when": _local(signed.next_dose_at)},
                base,
            )
        )
        if signed.loading_dose_mg:
            story.append(
                Paragraph(_("Loading dose: %(dose)s mg.") % {"dose": f"{signed.loading_dose_mg:g}"}, base)
            )
        story.append(
            table(
                [
                    [
                        _("Predicted AUC24 (mg·h/L)"),
                        _("Trough (mg/L)"),
                        _("Peak (mg/L)"),
                        _("Probability of target attainment"),
                    ],
                    [
                        f"{signed.auc24_mg_h_per_l:.0f}",
                        f"{signed.trough_mg_per_l:.1f}",
                        f"{signed.peak_mg_per_l:.1f}",
                        f"{signed.pta:.0%}" if signed.pta is not None else "—",
                    ],
                ]
            )
        )
        advice = _(
            "Monitoring: draw a trough level within 30 minutes before the dose due at %(when)s (the fourth "
            "dose of this regimen) and, for an AUC estimate, a second level 1 to 2 hours after the end of an "
            "infusion; "
            "re-check the serum creatinine at least every 2 to 3 days, daily if it changes."
        ) % {"when": _local(signed.next_dose_at + timedelta(hours=float(signed.interval_h) * 3))}
        story.append(Paragraph(advice, base))
        story.append(Spacer(1, 4 * mm))
        story.append(
            Paragraph(
                _("Signed by pharmacist %(name)s at %(when)s.")
                % {
                    "name": signed.pharmacist.display_name or signed.pharmacist.username,
                    "when": _local(signed.signed_at),
                },
                base,
            )
        )
        versions, engine = signed.model_versions, signed.engine_version
    elif fit is not None:
        story.append(
            Paragraph(_("No regimen has been signed yet. Engine recommendation (not a prescription):"), base)
        )
        rec = (fit.result.get("recommendation") or {}).get("maintenance")
        if rec:
            story.append(
                Paragraph(
                    regimen_words(
                        dose_mg=rec["dose_mg"], interval_h=rec["interval_h"], infusion_h=rec["infusion_h"]
                    ),
                    base,
                )
            )
        versions, engine = fit.model_versions, fit.engine_version
    else:
        versions, engine = {}, ""
    if engine:
        listed = ", ".join(f"{k} ({v})" for k, v in sorted(versions.items()))
        story.append(
            Paragraph(
                _("Engine version %(engine)s; models %(models)s.") % {"engine": engine, "models": listed},
                small,
            )
        )
    story.append(
        Paragraph(
            _("Course %(id)s. The doses above are a recommendation by a pharmacist; the prescriber decides.")
            % {"id": course.pk},
            small,
        )
    )
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=_("Vancomycin dosing report"),
        author=hospital,
    )
    doc.build(story)
    return buffer.getvalue()
