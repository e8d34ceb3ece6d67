"""``render_pdf``: the report as a digital PDF with a real text layer, or as an image-only PDF.

Fonts, pinned like the images' (``fonts``): reportlab 5.1 embeds only TrueType-outline fonts, and Debian's
Noto CJK ``.ttc`` files have CFF (PostScript) outlines, which reportlab's ``TTFont`` refuses. So CJK text
always uses reportlab's built-in CID font ``STSong-Light`` (not embedded; viewers substitute a Song face and
the text layer stays exact), and Latin text, digits and symbols (µ, ², ×, ↑, ↓, β, ≥) DejaVu Sans from
Debian's ``fonts-dejavu-core``, embedded; a missing DejaVu file is an error naming the package, never a
fallback.
The same layout code draws the image and the PDF, so rows sit where they sit on the image.
"""

from __future__ import annotations

import functools
import io
import time
from pathlib import Path
from typing import Literal

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen import canvas as pdf_canvas

from .fonts import FontNotFoundError
from .render import PAGE_SIZE_PX, PageLike, draw_layout, fitted_size, render_clean
from .truth import ReportSpec

PT_PER_PX = 72 / 200  # the layouts are drawn in 200 dpi pixels
PDF_EXTRA_GUTTER_PX = 30
DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")  # Debian's fonts-dejavu-core


@functools.cache
def _fonts() -> dict[str, str]:
    """Register the fonts once per process; returns role -> reportlab font name."""
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    fonts = {"cjk": "STSong-Light", "cjk-bold": "STSong-Light"}
    for role, name in (("latin", "DejaVuSans.ttf"), ("latin-bold", "DejaVuSans-Bold.ttf")):
        path = DEJAVU_DIR / name
        if not path.is_file():
            raise FontNotFoundError(
                f"the PDF generator draws Latin text with fonts-dejavu-core, and {path} is missing: "
                "install it (`apt-get install fonts-dejavu-core`)"
            )
        try:
            pdfmetrics.registerFont(TTFont(f"synth-{role}", str(path)))
        except TTFError as exc:
            raise FontNotFoundError(f"{path} is not a TrueType font reportlab can embed: {exc}") from exc
        fonts[role] = f"synth-{role}"
    return fonts


def _is_cjk(char: str) -> bool:
    return ord(char) >= 0x2E80


def _runs(text: str, bold: bool) -> list[tuple[str, str]]:
    """Split ``text`` into (font name, text) runs of CJK and Latin characters."""
    fonts = _fonts()
    latin = fonts["latin-bold" if bold else "latin"]
    cjk = fonts["cjk-bold" if bold else "cjk"]
    runs: list[tuple[str, str]] = []
    for char in text:
        font = cjk if _is_cjk(char) else latin
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + char)
        else:
            runs.append((font, char))
    return runs


class _PdfPage:
    """The layout drawing surface of ``render._Page``, on a reportlab canvas (y flipped, px → pt)."""

    def __init__(self, spec: ReportSpec, canvas: pdf_canvas.Canvas) -> None:
        self.spec = spec
        self.canvas = canvas
        self.height_pt = PAGE_SIZE_PX[1] * PT_PER_PX

    def text_width(self, text: str, size: int, *, bold: bool = False) -> float:
        size_pt = size * PT_PER_PX
        points = sum(pdfmetrics.stringWidth(run, font, size_pt) for font, run in _runs(text, bold))
        return points / PT_PER_PX

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: int,
        *,
        bold: bool = False,
        width: float | None = None,
        align: Literal["left", "center", "right"] = "left",
    ) -> None:
        if not text:
            return
        # Cells get a wider gutter than on the image: pypdf's layout mode places text on a grid of average
        # character widths and glues neighbouring cells ("×10^12/L3.80~5.10") when they nearly touch.
        if width is not None:
            width -= PDF_EXTRA_GUTTER_PX
        size = fitted_size(self, text, size, bold=bold, width=width)
        total = self.text_width(text, size, bold=bold)
        x -= {"left": 0.0, "center": total / 2, "right": total}[align]
        x_pt = x * PT_PER_PX
        baseline_pt = self.height_pt - (y + 0.88 * size) * PT_PER_PX  # Pillow anchors at the ascender
        size_pt = size * PT_PER_PX
        for font, run in _runs(text, bold):
            self.canvas.setFont(font, size_pt)
            self.canvas.drawString(x_pt, baseline_pt, run)
            x_pt += pdfmetrics.stringWidth(run, font, size_pt)

    def _line(self, x0: float, y0: float, x1: float, y1: float, width: int) -> None:
        self.canvas.setLineWidth(width * PT_PER_PX)
        self.canvas.line(
            x0 * PT_PER_PX, self.height_pt - y0 * PT_PER_PX, x1 * PT_PER_PX, self.height_pt - y1 * PT_PER_PX
        )

    def hline(self, x0: float, x1: float, y: float, width: int = 2) -> None:
        self._line(x0, y, x1, y, width)

    def vline(self, x: float, y0: float, y1: float, width: int = 2) -> None:
        self._line(x, y0, x, y1, width)

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.canvas.rect(
            x0 * PT_PER_PX,
            self.height_pt - y1 * PT_PER_PX,
            (x1 - x0) * PT_PER_PX,
            (y1 - y0) * PT_PER_PX,
            stroke=0,
            fill=1,
        )


def render_pdf(spec: ReportSpec, *, text_layer: bool = True) -> bytes:
    """The report as a one-page A4 PDF; byte-for-byte the same for the same spec.

    ``text_layer=True`` draws real text (what a laboratory system exports); ``text_layer=False`` wraps the
    clean 200 dpi render in a PDF with no text at all (what a scanner app produces).
    """
    if not text_layer:
        buffer = io.BytesIO()
        # Pillow stamps the current time unless told otherwise; the report time keeps the bytes reproducible.
        hour, minute = (int(part) for part in spec.reported_time.split(":"))
        stamp = time.struct_time((*spec.reported_on.timetuple()[:3], hour, minute, 0, 0, 0, 0))
        render_clean(spec).convert("L").save(
            buffer, format="PDF", resolution=200.0, creationDate=stamp, modDate=stamp, title=spec.title
        )
        return buffer.getvalue()
    buffer = io.BytesIO()
    canvas = pdf_canvas.Canvas(buffer, pagesize=A4, invariant=True)
    canvas.setTitle(f"{spec.hospital} {spec.title}")
    canvas.setCreator("screening.synth")
    page: PageLike = _PdfPage(spec, canvas)
    draw_layout(page)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
