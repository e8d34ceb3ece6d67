"""Rendering an uploaded PDF page to pixels: the one place it happens, with the one pixel cap (no Django).

Every render of an uploaded page (the reader's OCR, the staff case page's image) goes through
:func:`pdf_page_render`, so a page that declares a huge media box (a 597-byte PDF can claim 7200 × 7200 pt,
20000 × 20000 px at 200 dpi, gigabytes of memory) is drawn smaller instead. Uploads also refuse pages larger
than A0 (``screening.uploads``); the cap protects against files accepted before that check, and any other.
"""

from __future__ import annotations

import threading

from PIL import Image

PDF_RENDER_DPI = 200
PDF_RENDER_MAX_SIDE_PX = 4000  # so at most 16 Mpx (64 MB as RGBA) for one page, whatever it declares
PDFIUM_LOCK = threading.Lock()  # PDFium is not thread-safe


class RenderError(Exception):
    """The PDF or its page cannot be opened by PDFium."""


def pdf_render_scale(width_pt: float, height_pt: float, *, dpi: int = PDF_RENDER_DPI) -> float:
    """Pixels per PDF point: ``dpi`` / 72, lowered so that neither side passes ``PDF_RENDER_MAX_SIDE_PX``.

    >>> round(pdf_render_scale(595, 842), 3)  # A4 at 200 dpi
    2.778
    >>> round(pdf_render_scale(7200, 7200) * 7200)
    4000
    """
    side_pt = max(width_pt, height_pt, 1.0)
    return min(dpi / 72.0, PDF_RENDER_MAX_SIDE_PX / side_pt)


def pdf_page_render(data: bytes, index: int, *, dpi: int = PDF_RENDER_DPI) -> Image.Image:
    """Page ``index`` (0-based) of the PDF ``data`` as an RGB image at ``dpi``, capped by
    :func:`pdf_render_scale` on the size PDFium itself will draw."""
    import pypdfium2  # loaded only by what renders PDFs

    with PDFIUM_LOCK:
        try:
            doc = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as exc:
            raise RenderError(str(exc)) from exc
        try:
            page = doc[index]
            width_pt, height_pt = page.get_size()
            bitmap = page.render(scale=pdf_render_scale(width_pt, height_pt, dpi=dpi))
            image = bitmap.to_pil().convert("RGB")
            bitmap.close()
            page.close()
        finally:
            doc.close()
    return image
