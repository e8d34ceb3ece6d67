"""PDF pages larger than real paper are refused at upload; every render of a page has one pixel cap."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.utils import translation

from core.errors import AppError
from screening import uploads
from screening.pipeline.render import PDF_RENDER_MAX_SIDE_PX, pdf_page_render
from tests.screening import samples

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_pdf_declaring_a_7200_pt_page_is_refused_with_a_clear_message() -> None:
    data = samples.pdf_huge_page()
    assert len(data) < 1000
    with translation.override("en"), pytest.raises(AppError) as refused:
        uploads.inspect_and_derive(data)
    assert refused.value.code == "pdf_page_too_large"
    assert "larger than A0 paper" in refused.value.message


@pytest.mark.parametrize(
    ("width_pt", "height_pt"),
    [(595, 842), (842, 595), (2384, 3370), (3370, 2384), (612, 1008)],  # A4 both ways, A0 both ways, legal
)
def test_real_paper_sizes_are_accepted(width_pt: float, height_pt: float) -> None:
    derived = uploads.inspect_and_derive(samples.pdf_huge_page(width_pt, height_pt))
    assert derived.page_count == 1


@pytest.mark.parametrize(("width_pt", "height_pt"), [(2600, 3370), (2384, 3600), (14400, 100)])
def test_pages_past_a0_either_way_are_refused(width_pt: float, height_pt: float) -> None:
    with pytest.raises(AppError, match="pdf_page_too_large"):
        uploads.inspect_and_derive(samples.pdf_huge_page(width_pt, height_pt))


def test_the_render_of_a_huge_page_is_capped() -> None:
    image = pdf_page_render(samples.pdf_huge_page(), 0)
    assert image.size == (PDF_RENDER_MAX_SIDE_PX, PDF_RENDER_MAX_SIDE_PX)
    a4 = pdf_page_render(samples.pdf(), 0)
    assert a4.size == (1653, 2339)  # A4 at 200 dpi, under the cap: unchanged


def test_every_pdf_render_goes_through_the_one_capped_helper() -> None:
    """No module but screening/pipeline/render.py draws a PDF page (a guard that keeps the cap single)."""
    draws = re.compile(r"pypdfium2.*?\.render\(", re.DOTALL)
    offenders = [
        str(path.relative_to(ROOT))
        for app in ("screening", "dosing", "medcard", "reservations", "hospital")
        for path in (ROOT / app).rglob("*.py")
        if path.name != "render.py" and draws.search(path.read_text())
    ]
    assert offenders == []
