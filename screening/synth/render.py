"""Draw a ``ReportSpec`` as an A4 page (200 dpi) and degrade it into a scan or a phone photo.

Three layouts that a reader must all cope with:

* ``grid``: ruled table 序号/项目名称/英文缩写/结果/提示/单位/参考区间, the flag in its own column,
  header fields in a 4-column grid, report time and signatures in the footer.
* ``split``: the rows in two side-by-side tables (代号/项目/结果/单位/参考区间; one wide table for up to 3
  rows), the flag appended to the value, header fields in a ruled box.
* ``plain``: Chinese names only, no vertical rules, the flag after the value, header as label/value lines
  with a bar code.

Variants follow the OCR benchmark of the screening reference (§1.2): ``clean`` (RGB, 1654×2338),
``scan`` (grayscale, ±1.2° skew, blur 0.5, JPEG q85) and ``photo`` (page on a desk, ±4° rotation, ±3.5 %
keystone, uneven light, noise σ 7, blur 0.7-1.3, ×0.8, JPEG q55). Randomness comes from the spec's seed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .fonts import get_font
from .truth import ReportSpec, RowTruth

Variant = Literal["clean", "scan", "photo"]
VARIANTS: tuple[Variant, ...] = ("clean", "scan", "photo")
PAGE_SIZE_PX = (1654, 2338)  # A4 at 200 dpi
PHOTO_SCALE = 0.8
BLACK = (20, 20, 20)
_VARIANT_STREAM = {"clean": 0, "scan": 1, "photo": 2}


class _Page:
    """A white A4 page with text helpers that shrink text to fit its cell.

    Coordinates are pixels at 200 dpi from the top-left; ``pdf._PdfPage`` offers the same methods, so each
    layout draws both the image and the digital PDF.
    """

    def __init__(self, spec: ReportSpec) -> None:
        self.spec = spec
        self.image = Image.new("RGB", PAGE_SIZE_PX, "white")
        self.draw = ImageDraw.Draw(self.image)

    def text_width(self, text: str, size: int, *, bold: bool = False) -> float:
        return get_font(self.spec.font, size, bold=bold).getlength(text)

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
        """Draw ``text`` with its top-left (or top-centre/right) at x, y; shrink it to fit ``width``."""
        if not text:
            return
        size = fitted_size(self, text, size, bold=bold, width=width)
        anchor = {"left": "la", "center": "ma", "right": "ra"}[align]
        font = get_font(self.spec.font, size, bold=bold)
        self.draw.text((x, y), text, font=font, fill=BLACK, anchor=anchor)

    def hline(self, x0: float, x1: float, y: float, width: int = 2) -> None:
        self.draw.line([(x0, y), (x1, y)], fill=BLACK, width=width)

    def vline(self, x: float, y0: float, y1: float, width: int = 2) -> None:
        self.draw.line([(x, y0), (x, y1)], fill=BLACK, width=width)

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.draw.rectangle([x0, y0, x1, y1], fill=BLACK)


class PageLike(Protocol):
    spec: ReportSpec

    def text_width(self, text: str, size: int, *, bold: bool = False) -> float: ...

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
    ) -> None: ...

    def hline(self, x0: float, x1: float, y: float, width: int = 2) -> None: ...

    def vline(self, x: float, y0: float, y1: float, width: int = 2) -> None: ...

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> None: ...


def fitted_size(page: PageLike, text: str, size: int, *, bold: bool, width: float | None) -> int:
    """The largest size up to ``size`` (but not under 16 px) at which ``text`` fits ``width``."""
    if width is not None:
        while size > 16 and page.text_width(text, size, bold=bold) > width:
            size -= 1
    return size


def _dt(date_text: str, time_text: str) -> str:
    return f"{date_text} {time_text}"


def _header_fields(spec: ReportSpec) -> dict[str, str]:
    return {
        "姓名": spec.patient_name,
        "性别": spec.sex_zh,
        "年龄": f"{spec.age_years}岁",
        "病历号": spec.mrn,
        "科室": spec.department,
        "标本类型": spec.specimen,
        "样本号": spec.sample_no,
        "申请医生": spec.doctor,
        "采样时间": _dt(spec.printed_date(spec.collected_on), spec.collected_time),
        "接收时间": _dt(spec.printed_date(spec.collected_on), spec.received_time),
        "报告时间": _dt(spec.printed_date(spec.reported_on), spec.reported_time),
    }


def _value_with_flag(row: RowTruth) -> str:
    return f"{row.value_text} {row.flag_glyph}" if row.flag_glyph else row.value_text


def _render_grid(page: PageLike) -> None:
    spec, left, right = page.spec, 110, 1544
    fields = _header_fields(spec)
    page.text(827, 100, spec.hospital, 56, bold=True, align="center")
    page.text(827, 185, spec.title, 44, bold=True, align="center")
    y = 285
    grid = (
        ("姓名", "性别", "年龄", "病历号"),
        ("科室", "标本类型", "样本号", "申请医生"),
    )
    col_x, col_w = (left, 450, 730, 1130), (330, 270, 390, 414)
    for labels in grid:
        for x, width, label in zip(col_x, col_w, labels, strict=True):
            page.text(x, y, f"{label}：{fields[label]}", 32, width=width - 10)
        y += 54
    page.text(left, y, f"采样时间：{fields['采样时间']}", 32)
    page.text(730, y, f"接收时间：{fields['接收时间']}", 32)
    y += 66
    page.hline(left, right, y, 3)
    # (title, x, width the text is shrunk to). The gutters matter: OCR merges "mL/min/1.73m²" and ">=90"
    # into one box when they nearly touch.
    cols = (
        ("序号", left, 60),
        ("项目名称", 190, 380),
        ("英文缩写", 585, 150),
        ("结果", 755, 150),
        ("提示", 925, 60),
        ("单位", 1000, 240),
        ("参考区间", 1305, 239),
    )
    y += 14
    for title, x, _ in cols:
        page.text(x, y, title, 32, bold=True)
    y += 52
    page.hline(left, right, y, 2)
    y += 18
    for number, row in enumerate(spec.rows, start=1):
        cells = (
            str(number),
            row.name_zh,
            row.name_en,
            row.value_text,
            row.flag_glyph,
            row.unit_text,
            row.ref_text,
        )
        for (_, x, width), cell in zip(cols, cells, strict=True):
            page.text(x, y, cell, 34, width=width)
        y += 64
    y += 10
    page.hline(left, right, y, 3)
    y += 24
    page.text(left, y, f"报告时间：{fields['报告时间']}", 32)
    page.text(900, y, f"检验者：{spec.tester}", 32)
    page.text(1240, y, f"审核者：{spec.reviewer}", 32)
    y += 60
    page.text(left, y, "备注：本报告仅对所检标本负责，如有疑问请于三日内与检验科联系。", 28)


def _render_split(page: PageLike) -> None:
    spec, left, right = page.spec, 60, 1594
    fields = _header_fields(spec)
    page.text(left, 90, spec.hospital, 50, bold=True)
    page.text(right, 100, spec.title, 40, bold=True, align="right")
    # The header box: 3 rows of 3 label/value cells between rules.
    top, row_h = 185, 58
    boxes = (
        ("姓名", "性别", "年龄"),
        ("病历号", "科室", "申请医生"),
        ("标本类型", "样本号", "采样时间"),
    )
    page.hline(left, right, top, 3)
    for r, labels in enumerate(boxes):
        y = top + r * row_h + 12
        for c, label in enumerate(labels):
            x = left + 15 + c * 511
            page.text(x, y, f"{label}：{fields[label]}", 30, width=490)
        page.hline(left, right, top + (r + 1) * row_h, 1)
    for c in (1, 2):
        page.vline(left + c * 511, top, top + 3 * row_h, 1)
    y0 = top + 3 * row_h + 30
    # (title, x offset, width) in each half; text is shrunk to leave an 18 px gutter, which keeps OCR boxes
    # and PDF text-layer cells apart. Up to 3 rows make one full-width table (columns twice as wide).
    columns = (
        ("代号", 0, 85),
        ("项目", 85, 230),
        ("结果", 315, 118),
        ("单位", 433, 164),
        ("参考区间", 597, 150),
    )
    split = len(spec.rows) > 3
    half = (right - left - 40) / 2 if split else right - left
    scale = 1.0 if split else half / 747
    per_side = math.ceil(len(spec.rows) / 2) if split else len(spec.rows)
    sides = (spec.rows[:per_side], spec.rows[per_side:]) if split else (spec.rows,)
    bottom = y0
    for side, rows in enumerate(sides):
        x0 = left + side * (half + 40)
        y = y0
        for title, dx, width in columns:
            page.text(x0 + dx * scale, y, title, 28, bold=True, width=width * scale - 18)
        y += 44
        page.hline(x0, x0 + half, y, 2)
        y += 14
        for row in rows:
            cells = (row.name_en, row.name_zh, _value_with_flag(row), row.unit_text, row.ref_text)
            for (_, dx, width), cell in zip(columns, cells, strict=True):
                page.text(x0 + dx * scale, y, cell, 28, width=width * scale - 18)
            y += 56
        bottom = max(bottom, y)
    if split:
        page.vline(left + half + 20, y0, bottom, 1)
    y = bottom + 10
    page.hline(left, right, y, 3)
    y += 24
    page.text(left, y, f"接收时间：{fields['接收时间']}", 30)
    page.text(820, y, f"报告时间：{fields['报告时间']}", 30)
    y += 54
    page.text(left, y, f"检验者：{spec.tester}", 30)
    page.text(820, y, f"审核者：{spec.reviewer}", 30)
    y += 54
    page.text(left, y, "*本结果仅对本次送检标本负责，供临床参考。", 26)


def _barcode(page: PageLike, x: int, y: int, digits: str) -> None:
    """Bars derived from the sample number: it looks like a label and must not read as text."""
    bits = "".join(f"{int(d):04b}" for d in digits)
    for i, bit in enumerate(bits):
        width = 5 if bit == "1" else 2
        page.rect(x + i * 7, y, x + i * 7 + width, y + 70)


def _render_plain(page: PageLike) -> None:
    spec, left = page.spec, 130
    fields = _header_fields(spec)
    page.text(827, 110, spec.hospital, 54, bold=True, align="center")
    page.text(827, 192, spec.title, 42, align="center")
    _barcode(page, 1130, 270, spec.sample_no[-8:])
    y = 280
    pairs = (
        ("姓名", "性别", "年龄"),
        ("病历号", "科室", "标本类型"),
        ("采样时间", "申请医生", "样本号"),
    )
    for labels in pairs:
        x = left
        for label in labels:
            text = f"{label}：{fields[label]}"
            page.text(x, y, text, 32)
            x += max(300, int(page.text_width(text, 32)) + 50)
        y += 52
    y += 30
    page.hline(left, 1524, y, 2)
    y += 16
    cols = (("检验项目", left, 520), ("结果", 660, 260), ("单位", 930, 290), ("参考值", 1230, 300))
    for title, x, _ in cols:
        page.text(x, y, title, 34, bold=True)
    y += 60
    for row in spec.rows:
        cells = (row.name_zh, _value_with_flag(row), row.unit_text, row.ref_text)
        for (_, x, width), cell in zip(cols, cells, strict=True):
            page.text(x, y, cell, 36, width=width - 10)
        y += 68
    y += 20
    page.hline(left, 1524, y, 2)
    y += 30
    page.text(left, y, f"检验者：{spec.tester}    审核者：{spec.reviewer}", 32)
    y += 54
    page.text(left, y, f"接收时间：{fields['接收时间']}    报告时间：{fields['报告时间']}", 32)
    y += 54
    page.text(left, y, "注：箭头或H/L表示结果高于或低于参考值。", 28)


_LAYOUTS = {"grid": _render_grid, "split": _render_split, "plain": _render_plain}


def draw_layout(page: PageLike) -> None:
    """Draw ``page.spec`` in its layout on ``page`` (an image page or a PDF page)."""
    try:
        layout = _LAYOUTS[page.spec.layout]
    except KeyError:
        raise ValueError(f"unknown layout {page.spec.layout!r}; expected one of {tuple(_LAYOUTS)}") from None
    layout(page)


def render_clean(spec: ReportSpec) -> Image.Image:
    """The page as printed: RGB, 1654×2338."""
    page = _Page(spec)
    draw_layout(page)
    return page.image


def jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _perspective_coefficients(
    output_quad: Sequence[tuple[float, float]], input_quad: Sequence[tuple[float, float]]
) -> tuple[float, ...]:
    """PIL's PERSPECTIVE data mapping each output corner to its input corner (8 linear equations)."""
    matrix, rhs = [], []
    for (x, y), (u, v) in zip(output_quad, input_quad, strict=True):
        matrix.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        matrix.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return tuple(float(c) for c in np.linalg.solve(np.array(matrix), np.array(rhs)))


def scan_effect(clean: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A flatbed scan of a printed page (before JPEG): grayscale, ±1.2° skew, blur 0.5."""
    gray = clean.convert("L")
    angle = rng.uniform(-1.2, 1.2)
    skewed = gray.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255)
    return skewed.filter(ImageFilter.GaussianBlur(0.5))


def desk_image(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A wood- or grey-toned surface with a soft gradient (drawn 32 rows high, then stretched)."""
    base = np.array(rng.choice([(120, 90, 60), (150, 120, 85), (95, 95, 100), (60, 55, 50), (170, 160, 150)]))
    w, h = size
    ramp = np.linspace(-0.15, 0.15, 32, dtype=np.float32)[:, None, None]
    streaks = rng.normal(0, 0.04, (1, w, 1)).astype(np.float32)
    pixels = np.clip(base[None, None, :] * (1 + ramp + streaks), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).resize((w, h), Image.Resampling.BILINEAR)


def photo_effect(clean: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A phone photo of a printed page lying on a desk (before JPEG), ×0.8 the page's size."""
    w, h = clean.size
    # 1. Slightly tinted paper, seen from a little further away, on a desk.
    warmth = rng.uniform(0, 14)
    tint = (int(250 - warmth / 3), int(248 - warmth / 2), int(244 - warmth))
    ink = clean.convert("L").point(lambda v: 255 - v)
    paper = Image.composite(clean, Image.new("RGB", clean.size, tint), ink)
    scale = rng.uniform(0.86, 0.94)
    small = paper.resize((int(w * scale), int(h * scale)), Image.Resampling.BILINEAR)
    canvas = desk_image(rng, (w, h))
    offset = (
        int((w - small.width) / 2 + rng.uniform(-20, 20)),
        int((h - small.height) / 2 + rng.uniform(-20, 20)),
    )
    canvas.paste(small, offset)
    desk_colour = canvas.getpixel((2, 2))
    # 2. Hand-held: rotation and a keystone from a camera not quite parallel to the page, as one transform.
    angle = math.radians(rng.uniform(-4, 4))
    cos, sin = math.cos(angle), math.sin(angle)
    corners = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
    moved = [
        (
            w / 2 + (x - w / 2) * cos - (y - h / 2) * sin + rng.uniform(-0.035, 0.035) * w,
            h / 2 + (x - w / 2) * sin + (y - h / 2) * cos + rng.uniform(-0.035, 0.035) * h,
        )
        for x, y in corners
    ]
    canvas = canvas.transform(
        (w, h),
        Image.Transform.PERSPECTIVE,
        _perspective_coefficients(moved, corners),
        resample=Image.Resampling.BILINEAR,
        fillcolor=desk_colour,
    )
    # 3. Optics: blur, then the smaller sensor image.
    canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.7, 1.3)))
    canvas = canvas.resize((round(w * PHOTO_SCALE), round(h * PHOTO_SCALE)), Image.Resampling.BILINEAR)
    # 4. Uneven light (vignette plus a directional gradient) and sensor noise σ 7.
    # The light field is smooth: compute it on a coarse grid and let Pillow enlarge it.
    cw, ch = canvas.size
    yy, xx = (np.linspace(0, 1, n, dtype=np.float32) for n in (64, 48))
    yy, xx = yy[:, None], xx[None, :]
    r2 = ((xx - 0.5) / 0.5) ** 2 + ((yy - 0.5) / 0.5) ** 2
    direction = rng.uniform(0, 2 * math.pi)
    gradient = (np.cos(direction) * (xx - 0.5) + np.sin(direction) * (yy - 0.5)) * rng.uniform(0.1, 0.25)
    coarse = ((1 - rng.uniform(0.12, 0.25) * r2 + gradient) * rng.uniform(0.9, 1.0)).astype(np.float32)
    light = np.asarray(Image.fromarray(coarse, mode="F").resize((cw, ch), Image.Resampling.BILINEAR))
    pixels = np.asarray(canvas, dtype=np.float32) * light[:, :, None]
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * 7
    np.clip(pixels, 0, 255, out=pixels)
    return Image.fromarray(pixels.astype(np.uint8))


_JPEG_QUALITY = {"scan": 85, "photo": 55}


def render_bytes(spec: ReportSpec, variant: Variant = "clean") -> tuple[bytes, str]:
    """The file a patient would upload: ``(PNG bytes, "png")`` when clean, else ``(JPEG bytes, "jpg")``."""
    if variant not in _VARIANT_STREAM:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    clean = render_clean(spec)
    if variant == "clean":
        buffer = io.BytesIO()
        clean.save(buffer, format="PNG")
        return buffer.getvalue(), "png"
    rng = np.random.default_rng([spec.seed, _VARIANT_STREAM[variant]])
    degraded = scan_effect(clean, rng) if variant == "scan" else photo_effect(clean, rng)
    return jpeg_bytes(degraded, _JPEG_QUALITY[variant]), "jpg"


def render(spec: ReportSpec, variant: Variant = "clean") -> Image.Image:
    """The report as a ``clean`` page, a ``scan`` or a phone ``photo`` (deterministic for a spec).

    Scans and photos come back decoded from their JPEG, so they carry its artefacts.
    """
    if variant == "clean":
        return render_clean(spec)
    data, _ = render_bytes(spec, variant)
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
