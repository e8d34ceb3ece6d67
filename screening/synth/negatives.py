"""Uploads that are not a readable lab report, for the document-type model (label = the kind).

* ``blank``: an empty sheet (scanned or photographed) or a photo of the desk with no page at all.
* ``other_document``: a medical document with Chinese text and numbers but no results table: an outpatient
  fee receipt (门诊收费票据) or a prescription (处方笺).
* ``unreadable``: a real generated lab report, blurred, underexposed or shrunk past reading.
* ``scene``: a photo-like image of nothing in particular (smooth colour fields, shapes, noise).

Every image comes back decoded from a JPEG (or as a clean page), deterministic for ``(seed, kind)``.
"""

from __future__ import annotations

import io
import random
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .fonts import FONT_KEYS, get_font
from .render import PAGE_SIZE_PX, desk_image, jpeg_bytes, photo_effect, render_clean, scan_effect
from .spec import chinese_name, hospital_name, make_spec
from .truth import Sex

NegativeKind = Literal["blank", "other_document", "unreadable", "scene"]
NEGATIVE_KINDS: tuple[NegativeKind, ...] = ("blank", "other_document", "unreadable", "scene")
_KIND_STREAM = {"blank": 11, "other_document": 12, "unreadable": 13, "scene": 14}

_FEE_ITEMS = (
    ("挂号费", 14.0, 38.0),
    ("诊查费", 20.0, 50.0),
    ("化验费", 35.0, 420.0),
    ("检查费", 80.0, 680.0),
    ("西药费", 12.5, 560.0),
    ("中成药费", 18.0, 260.0),
    ("治疗费", 10.0, 180.0),
    ("卫生材料费", 2.0, 60.0),
)
_DRUGS = (
    ("阿莫西林胶囊", "0.25g×24粒", "口服 每次0.5g 每日3次"),
    ("苯磺酸氨氯地平片", "5mg×28片", "口服 每次5mg 每日1次"),
    ("盐酸二甲双胍片", "0.5g×48片", "口服 每次0.5g 每日2次 餐后"),
    ("阿托伐他汀钙片", "20mg×7片", "口服 每次20mg 每晚1次"),
    ("布洛芬缓释胶囊", "0.3g×20粒", "口服 每次0.3g 必要时"),
    ("奥美拉唑肠溶胶囊", "20mg×14粒", "口服 每次20mg 每日1次 早餐前"),
    ("氯雷他定片", "10mg×6片", "口服 每次10mg 每日1次"),
    ("复方甘草口服溶液", "100ml×1瓶", "口服 每次10ml 每日3次"),
)
_DIAGNOSES = ("高血压病", "2型糖尿病", "急性上呼吸道感染", "慢性胃炎", "高脂血症", "过敏性鼻炎", "腰肌劳损")


def _jpeg_decoded(image: Image.Image, quality: int) -> Image.Image:
    decoded = Image.open(io.BytesIO(jpeg_bytes(image, quality)))
    decoded.load()
    return decoded


class _Sheet:
    def __init__(self, font: str, size: tuple[int, int] = PAGE_SIZE_PX) -> None:
        self.font = font
        self.image = Image.new("RGB", size, "white")
        self.draw = ImageDraw.Draw(self.image)

    def text(
        self, x: float, y: float, text: str, size: int, *, bold: bool = False, anchor: str = "la"
    ) -> None:
        font = get_font(self.font, size, bold=bold)
        self.draw.text((x, y), text, font=font, fill=(20, 20, 20), anchor=anchor)

    def line(self, x0: float, y0: float, x1: float, y1: float, width: int = 2) -> None:
        self.draw.line([(x0, y0), (x1, y1)], fill=(20, 20, 20), width=width)


def _receipt(rng: np.random.Generator, font: str) -> Image.Image:
    sheet = _Sheet(font)
    red = (170, 40, 40)
    sheet.text(827, 140, "上海市医疗门诊收费票据（电子）", 54, bold=True, anchor="ma")
    sheet.draw.ellipse([1250, 90, 1500, 260], outline=red, width=5)
    sheet.draw.text((1375, 175), "财政监制", font=get_font(font, 34), fill=red, anchor="mm")
    sex: Sex = "M" if rng.random() < 0.5 else "F"
    python_rng = _python_rng(rng)
    payer = chinese_name(python_rng, sex)
    y = 300
    sheet.text(120, y, f"票据代码：{rng.integers(31060000, 31069999)}", 32)
    sheet.text(900, y, f"票据号码：{rng.integers(10**9, 10**10 - 1)}", 32)
    y += 60
    sheet.text(120, y, f"交款人：{payer}", 32)
    sheet.text(600, y, f"医保类型：{python_rng.choice(('职工医保', '居民医保', '自费'))}", 32)
    sheet.text(1100, y, f"开票日期：2026-{rng.integers(1, 12):02d}-{rng.integers(1, 28):02d}", 32)
    y += 80
    sheet.line(120, y, 1534, y, 3)
    y += 20
    for x, title in ((140, "项目名称"), (620, "数量"), (820, "单位"), (1050, "金额（元）"), (1300, "备注")):
        sheet.text(x, y, title, 32, bold=True)
    y += 60
    total = 0.0
    picks = rng.choice(len(_FEE_ITEMS), size=int(rng.integers(3, 7)), replace=False)
    for index in sorted(picks):
        name, low, high = _FEE_ITEMS[int(index)]
        amount = round(float(rng.uniform(low, high)), 2)
        total += amount
        sheet.text(140, y, name, 34)
        sheet.text(620, y, "1", 34)
        sheet.text(820, y, "次" if name.endswith(("挂号费", "诊查费")) else "项", 34)
        sheet.text(1050, y, f"{amount:.2f}", 34)
        y += 62
    sheet.line(120, y + 10, 1534, y + 10, 3)
    y += 40
    sheet.text(140, y, f"合计（小写）：¥{total:.2f}", 36, bold=True)
    y += 70
    fund = round(total * float(rng.uniform(0, 0.7)), 2)
    sheet.text(140, y, f"医保统筹支付：{fund:.2f}    个人自付：{total - fund:.2f}", 32)
    y += 70
    sheet.text(140, y, f"收款单位（章）：{hospital_name(python_rng)}", 32)
    sheet.text(1100, y, f"收款人：{chinese_name(python_rng, 'F')}", 32)
    return sheet.image


def _prescription(rng: np.random.Generator, font: str) -> Image.Image:
    sheet = _Sheet(font)
    python_rng = _python_rng(rng)
    sheet.text(827, 110, hospital_name(python_rng), 54, bold=True, anchor="ma")
    sheet.text(827, 195, "处 方 笺", 50, bold=True, anchor="ma")
    sheet.draw.rectangle([1330, 110, 1530, 180], outline=(20, 20, 20), width=3)
    sheet.text(1430, 125, "普通处方", 34, anchor="ma")
    sex: Sex = "M" if rng.random() < 0.5 else "F"
    y = 300
    sheet.text(120, y, f"姓名：{chinese_name(python_rng, sex)}", 34)
    sheet.text(600, y, f"性别：{'男' if sex == 'M' else '女'}", 34)
    sheet.text(900, y, f"年龄：{rng.integers(18, 90)}岁", 34)
    sheet.text(1200, y, f"门诊号：{rng.integers(10**7, 10**8)}", 34)
    y += 64
    sheet.text(120, y, f"科别：{python_rng.choice(('心内科', '内分泌科', '呼吸科', '消化科', '全科'))}", 34)
    sheet.text(600, y, f"临床诊断：{python_rng.choice(_DIAGNOSES)}", 34)
    y += 80
    sheet.line(120, y, 1534, y, 3)
    y += 30
    sheet.text(120, y, "Rp.", 56, bold=True)
    y += 90
    picks = rng.choice(len(_DRUGS), size=int(rng.integers(1, 5)), replace=False)
    for index in picks:
        drug, pack, usage = _DRUGS[int(index)]
        sheet.text(180, y, f"{drug}    {pack}    ×{rng.integers(1, 4)}盒", 38)
        y += 60
        sheet.text(240, y, f"用法：{usage}", 34)
        y += 90
    y = max(y, 1700)
    sheet.line(120, y, 1534, y, 3)
    y += 30
    sheet.text(120, y, f"医师：{chinese_name(python_rng, 'M')}", 34)
    sheet.text(600, y, f"审核药师：{chinese_name(python_rng, 'F')}", 34)
    sheet.text(1100, y, f"金额：¥{rng.uniform(20, 600):.2f}", 34)
    y += 64
    sheet.text(120, y, "调配：              核对/发药：", 34)
    return sheet.image


def _python_rng(rng: np.random.Generator) -> random.Random:
    """A ``random.Random`` for the name helpers, seeded from the numpy stream."""
    return random.Random(int(rng.integers(2**31)))  # noqa: S311 - generated test data


def _as_upload(page: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The page as clean, scanned or photographed, as a patient would upload it."""
    how = rng.integers(3)
    if how == 0:
        return page
    if how == 1:
        return _jpeg_decoded(scan_effect(page, rng), 85)
    return _jpeg_decoded(photo_effect(page, rng), 55)


def _scene(rng: np.random.Generator) -> Image.Image:
    size = (1323, 1870) if rng.random() < 0.5 else (1600, 1200)
    # Muted colours around one mean, as in a room or a street, rather than a test pattern.
    mean = rng.uniform(60, 200, 3)
    grid = (int(rng.integers(3, 7)), int(rng.integers(3, 7)), 3)
    coarse = np.clip(mean + rng.normal(0, 35, grid), 0, 255).astype(np.uint8)
    image = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 12))):
        x0, y0 = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        x1, y1 = x0 + int(rng.integers(40, 600)), y0 + int(rng.integers(40, 600))
        colour = tuple(int(c) for c in np.clip(mean + rng.normal(0, 60, 3), 0, 255))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x0, y0, x1, y1], fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(2, 12))))
    pixels = np.asarray(image, dtype=np.float32)
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * 7
    return _jpeg_decoded(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), 60)


def _unreadable(seed: int, rng: np.random.Generator) -> Image.Image:
    page = render_clean(make_spec(seed))
    how = rng.integers(3)
    if how == 0:  # far out of focus
        return _jpeg_decoded(
            photo_effect(page.filter(ImageFilter.GaussianBlur(float(rng.uniform(9, 14)))), rng), 55
        )
    if how == 1:  # taken in the dark
        photo = np.asarray(photo_effect(page, rng), dtype=np.float32) * float(rng.uniform(0.04, 0.09))
        photo += rng.standard_normal(photo.shape, dtype=np.float32) * 4
        return _jpeg_decoded(Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)), 55)
    width = int(rng.integers(120, 200))  # a thumbnail sent instead of the photo
    return _jpeg_decoded(page.resize((width, round(width * 2338 / 1654)), Image.Resampling.BILINEAR), 70)


def _blank(rng: np.random.Generator) -> Image.Image:
    if rng.random() < 0.4:  # the desk, no page
        desk = np.asarray(desk_image(rng, (1323, 1870)), dtype=np.float32)
        desk += rng.standard_normal(desk.shape, dtype=np.float32) * 7
        image = Image.fromarray(np.clip(desk, 0, 255).astype(np.uint8))
        return _jpeg_decoded(image.filter(ImageFilter.GaussianBlur(1.0)), 55)
    page = Image.new("RGB", PAGE_SIZE_PX, "white")
    if rng.random() < 0.5:  # a fold line or a stray mark
        draw = ImageDraw.Draw(page)
        y = int(rng.integers(600, 1800))
        draw.line([(0, y), (PAGE_SIZE_PX[0], y + int(rng.integers(-20, 20)))], fill=(225, 225, 225), width=3)
    return _as_upload(page, rng)


def make_negative(seed: int, kind: NegativeKind | None = None) -> tuple[Image.Image, str]:
    """An upload that is not a readable lab report, and its label (``kind``; drawn from the seed if None)."""
    rng = np.random.default_rng([seed, 99])
    drawn = NEGATIVE_KINDS[int(rng.integers(len(NEGATIVE_KINDS)))]
    kind = kind or drawn
    if kind not in _KIND_STREAM:
        raise ValueError(f"unknown negative kind {kind!r}; expected one of {NEGATIVE_KINDS}")
    rng = np.random.default_rng([seed, _KIND_STREAM[kind]])
    fonts = FONT_KEYS
    if kind == "blank":
        image = _blank(rng)
    elif kind == "other_document":
        font = fonts[int(rng.integers(len(fonts)))]
        page = _receipt(rng, font) if rng.random() < 0.5 else _prescription(rng, font)
        image = _as_upload(page, rng)
    elif kind == "unreadable":
        image = _unreadable(seed, rng)
    else:
        image = _scene(rng)
    return image, kind
