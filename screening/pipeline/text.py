"""Step 1 of the screening pipeline: read the text of one uploaded file (no Django).

``read_file(data, kind)`` takes the sanitised derivative of an upload (a re-encoded JPEG or PNG, or a PDF)
and returns a :class:`~screening.pipeline.types.TextResult`: per page, the text segments with their box and
reader score, and in ``engine`` what read them (versions and model checksums, for the audit record).

* PDFs: the text layer (pypdf, layout mode, one table row per line, score 1.0), each cell boxed where
  PDFium drew the same line (in pixels of a 200 dpi render). A page whose text layer is too short or has
  no digit (a scan saved as PDF) is rendered at 200 dpi with pypdfium2 and OCRed.
* Images: RapidOCR 3.10 (PP-OCRv6 small det/rec, bundled in the wheel) with the 180° line classifier
  **off**: with it on, short cells such as ``99`` are read upside down as ``66`` with score 1.0
  (reference §1.3). Page orientation is checked once per page instead (see :func:`_read_image`).

The OCR engine is loaded once per process, lazily, behind a lock; it is given the bundled model files by
path, so it never tries to download anything (the workers run without network).
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from screening.pipeline.render import (
    PDF_RENDER_DPI,
    PDFIUM_LOCK,
    RenderError,
    pdf_page_render,
    pdf_render_scale,
)
from screening.pipeline.types import Box, PageText, Segment, TextResult

TEXT_VERSION = "text-3"

PDF_MIN_CHARS = 50  # a text layer shorter than this (or without any digit) is treated as a scanned page
ORIENTATION_MIN_SCORE = 0.9  # below this mean score at 0°, the other three orientations are tried
UPRIGHT_SCORE = 0.95  # a turned reading this sure is taken without trying the remaining turns
OCR_THREADS = 2  # the worker machines have 2 cores; one OCR at a time per process
# The detector's box threshold (RapidOCR default 0.5): at 0.3 it also keeps lone small glyphs, such as a
# flag arrow in its own column or a unit "s", that 0.5 dropped on scans, at no measurable cost.
DET_BOX_THRESH = 0.3
KINDS = ("jpeg", "png", "pdf")

_DET_MODEL = "PP-OCRv6_det_small.onnx"
_REC_MODEL = "PP-OCRv6_rec_small.onnx"


class TextError(Exception):
    """The file cannot be read: ``code`` is a stable reason code, ``message`` a sentence for staff.

    Codes: ``unsupported_kind``, ``unreadable``, ``encrypted``, ``too_many_pages``, ``empty``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def read_file(data: bytes, kind: str, *, max_pages: int = 10) -> TextResult:
    """The text of one sanitised upload, page by page.

    Parameters
    ----------
    data : bytes
        The file's content.
    kind : {"jpeg", "png", "pdf"}
        Its type, as sniffed by the upload step.
    max_pages : int
        PDFs with more pages are refused (``TextError("too_many_pages")``).

    Raises
    ------
    TextError
        For an unknown kind, an unreadable or encrypted file, or too many pages.
    """
    if kind not in KINDS:
        raise TextError("unsupported_kind", f"Cannot read files of type {kind!r}; expected one of {KINDS}.")
    if kind == "pdf":
        return _read_pdf(data, max_pages=max_pages)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            rgb = ImageOps.exif_transpose(img).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise TextError("unreadable", f"The image could not be decoded ({exc}).") from exc
    page = _read_image(rgb, number=1)
    return TextResult(pages=(page,), engine=engine_info(ocr=True))


# --- PDF -------------------------------------------------------------------------------------------------


def _read_pdf(data: bytes, *, max_pages: int) -> TextResult:
    # pypdf is imported here so that reading images does not pay for it (and vice versa for pypdfium2)
    import pypdf
    from pypdf.errors import PyPdfError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
        n_pages = 0 if encrypted else len(reader.pages)
    except (PyPdfError, OSError, ValueError, KeyError, TypeError) as exc:
        raise TextError("unreadable", f"The PDF could not be parsed ({exc}).") from exc
    if encrypted:
        raise TextError(
            "encrypted", "The PDF is encrypted or password-protected; upload an unprotected copy."
        )
    if n_pages == 0:
        raise TextError("empty", "The PDF has no pages.")
    if n_pages > max_pages:
        raise TextError("too_many_pages", f"The PDF has {n_pages} pages; at most {max_pages} are read.")

    pages: list[PageText] = []
    used_ocr = False
    for index, pdf_page in enumerate(reader.pages):
        started = time.perf_counter()
        try:
            text = pdf_page.extract_text(extraction_mode="layout", layout_mode_space_vertically=False)
        except (PyPdfError, ValueError, KeyError, TypeError, ZeroDivisionError):
            text = ""  # a broken text layer: read the rendered page instead
        if _has_usable_text(text):
            width_pt, height_pt = float(pdf_page.mediabox.width), float(pdf_page.mediabox.height)
            scale = pdf_render_scale(width_pt, height_pt)  # the boxes of the page as it would be rendered
            lines = [line.rstrip() for line in text.splitlines() if line.strip()]
            segments = _place_lines(lines, _pdf_runs(data, index), page=index + 1, scale=scale)
            pages.append(
                PageText(
                    number=index + 1,
                    source="pdf_text",
                    width_px=round(width_pt * scale),
                    height_px=round(height_pt * scale),
                    segments=segments,
                    seconds=time.perf_counter() - started,
                )
            )
            continue
        used_ocr = True
        try:
            image = pdf_page_render(data, index)  # the one pixel cap (screening/pipeline/render.py)
        except RenderError as exc:
            raise TextError("unreadable", f"The PDF page could not be rendered ({exc}).") from exc
        page = _read_image(image, number=index + 1)
        pages.append(_with_seconds(page, time.perf_counter() - started))
    engine = engine_info(ocr=used_ocr)
    engine["pdf"] = {"name": "pypdf", "version": version("pypdf"), "extraction_mode": "layout"}
    if used_ocr:
        engine["pdf"]["renderer"] = {
            "name": "pypdfium2",
            "version": version("pypdfium2"),
            "dpi": PDF_RENDER_DPI,
        }
    return TextResult(pages=tuple(pages), engine=engine)


# A run of text PDFium drew: its box in PDF points (left, bottom, right, top) and its characters.
_Run = tuple[float, float, float, float, str]


def _pdf_runs(data: bytes, index: int) -> list[_Run]:
    """PDFium's text runs of one page, for the positions the pypdf text layer does not give."""
    import pypdfium2

    runs: list[_Run] = []
    with PDFIUM_LOCK:
        try:
            doc = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError:
            return runs
        try:
            page = doc[index]
            height = page.get_height()
            textpage = page.get_textpage()
            for i in range(textpage.count_rects()):
                left, bottom, right, top = textpage.get_rect(i)
                chars = textpage.get_text_bounded(left, bottom, right, top)
                runs.append((left, height - top, right, height - bottom, chars))  # top-down y
            textpage.close()
            page.close()
        finally:
            doc.close()
    return runs


def _place_lines(lines: list[str], runs: list[_Run], *, page: int, scale: float) -> tuple[Segment, ...]:
    """Segments of the layout text, one per cell with its box where PDFium drew the same line.

    1. Group PDFium's runs into visual lines (vertical centres within half a run height).
    2. A layout line matches a group whose characters, spaces removed and left to right, are the same.
    3. A matched line becomes one segment per cell (split at two or more spaces), each boxed by the runs
       whose first character falls in it; an unmatched line stays one segment without a box.
    """
    groups: list[list[_Run]] = []
    for run in sorted(runs, key=lambda r: (r[1] + r[3]) / 2):
        centre, half = (run[1] + run[3]) / 2, (run[3] - run[1]) / 2
        if groups and abs(centre - (groups[-1][0][1] + groups[-1][0][3]) / 2) <= max(half, 1.0):
            groups[-1].append(run)
        else:
            groups.append([run])
    by_text: dict[str, list[list[_Run]]] = {}
    for group in groups:
        group.sort(key=lambda r: r[0])
        by_text.setdefault("".join("".join(r[4] for r in group).split()), []).append(group)
    segments: list[Segment] = []
    for line in lines:
        candidates = by_text.get("".join(line.split()))
        if not candidates:
            segments.append(Segment(line, 1.0, None))
            continue
        group = candidates.pop(0)
        cells = [cell for cell in re.split(r"\s{2,}", line.strip()) if cell]
        # character offset (spaces removed) where each cell and each run starts
        cell_starts, offset = [], 0
        for cell in cells:
            cell_starts.append(offset)
            offset += len("".join(cell.split()))
        run_starts, offset = [], 0
        for run in group:
            run_starts.append(offset)
            offset += len("".join(run[4].split()))
        for c, cell in enumerate(cells):
            end = cell_starts[c + 1] if c + 1 < len(cells) else offset
            mine = [r for r, at in zip(group, run_starts, strict=True) if cell_starts[c] <= at < end]
            if not mine:  # a run spanning two cells: it boxes the first one only; keep the line whole
                segments.append(Segment(line, 1.0, None))
                break
            box = Box(
                page=page,
                x0=round(min(r[0] for r in mine) * scale, 1),
                y0=round(min(r[1] for r in mine) * scale, 1),
                x1=round(max(r[2] for r in mine) * scale, 1),
                y1=round(max(r[3] for r in mine) * scale, 1),
            )
            segments.append(Segment(cell, 1.0, box))
    return tuple(segments)


def _has_usable_text(text: str) -> bool:
    stripped = "".join(text.split())
    return len(stripped) >= PDF_MIN_CHARS and any(ch.isdigit() for ch in stripped)


def _with_seconds(page: PageText, seconds: float) -> PageText:
    return PageText(
        number=page.number,
        source=page.source,
        width_px=page.width_px,
        height_px=page.height_px,
        segments=page.segments,
        rotation_deg=page.rotation_deg,
        seconds=seconds,
    )


# --- OCR -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reading:
    rotation_deg: int
    width_px: int
    height_px: int
    segments: tuple[Segment, ...]

    @property
    def mean_score(self) -> float:
        return float(np.mean([s.score for s in self.segments])) if self.segments else 0.0

    @property
    def tall_fraction(self) -> float:
        """Share of boxes taller than wide: most are, when the lines run vertically (a page on its side)."""
        boxes = [s.box for s in self.segments if s.box is not None]
        if not boxes:
            return 0.0
        return sum(1 for b in boxes if (b.y1 - b.y0) > (b.x1 - b.x0)) / len(boxes)

    @property
    def weight(self) -> float:
        """How much text was read how surely: characters times score, summed, discounted by the share of
        boxes taller than wide (horizontal lines read across their height are misreadings)."""
        return (1.0 - self.tall_fraction) * sum(s.score * len(s.text.strip()) for s in self.segments)


def _read_image(image: Image.Image, *, number: int) -> PageText:
    """OCR one page, fixing its orientation once.

    1. Read at 0°.
    2. If the mean score is below ``ORIENTATION_MIN_SCORE`` or most boxes are taller than wide, also read
       the page turned by 90°, 180° and 270° clockwise.
    3. Keep the reading with the most text read surely (characters × score); ties keep the earlier one.
       A turned reading that is clearly upright (mean score >= 0.95, lines wider than tall) ends the search:
       phones put pages on their side far more often than upside down, so 90° and 270° come first.
    """
    started = time.perf_counter()
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    best = _ocr(bgr, rotation_deg=0, number=number)
    if best.mean_score < ORIENTATION_MIN_SCORE or best.tall_fraction > 0.5:
        for rotation in (90, 270, 180):
            # np.rot90 turns counter-clockwise for positive k; k=-1 is a quarter turn clockwise
            turned = np.ascontiguousarray(np.rot90(bgr, k=-(rotation // 90)))
            reading = _ocr(turned, rotation_deg=rotation, number=number)
            if reading.weight > best.weight * 1.05:
                best = reading
                if reading.mean_score >= UPRIGHT_SCORE and reading.tall_fraction <= 0.5:
                    break
    return PageText(
        number=number,
        source="ocr",
        width_px=best.width_px,
        height_px=best.height_px,
        segments=best.segments,
        rotation_deg=best.rotation_deg,
        seconds=time.perf_counter() - started,
    )


def _ocr(bgr: np.ndarray, *, rotation_deg: int, number: int) -> _Reading:
    engine = _engine()
    # RapidOCR's __call__ writes per-call options onto the shared engine, and ONNX Runtime already uses
    # both cores: one page at a time per process
    with _OCR_LOCK:
        out = engine(bgr)
    segments: list[Segment] = []
    if out.boxes is not None and out.txts is not None and out.scores is not None:
        for quad, text, score in zip(out.boxes, out.txts, out.scores, strict=True):
            points = np.asarray(quad, dtype=float)
            box = Box(
                page=number,
                x0=float(points[:, 0].min()),
                y0=float(points[:, 1].min()),
                x1=float(points[:, 0].max()),
                y1=float(points[:, 1].max()),
            )
            segments.append(Segment(str(text), round(float(score), 4), box))
    height, width = bgr.shape[:2]
    return _Reading(rotation_deg, width, height, tuple(segments))


_ENGINE: Any = None
_ENGINE_LOCK = threading.Lock()
_OCR_LOCK = threading.Lock()
_ENGINE_INFO: dict[str, Any] | None = None


def _model_dir() -> Path:
    import rapidocr

    return Path(rapidocr.__file__).resolve().parent / "models"


def ocr_params() -> dict[str, Any]:
    """The RapidOCR parameters used: classifier off, the bundled det/rec models by path (no download)."""
    models = _model_dir()
    return {
        "Global.use_cls": False,
        "Global.log_level": "warning",
        "Det.box_thresh": DET_BOX_THRESH,
        "Det.model_path": str(models / _DET_MODEL),
        "Rec.model_path": str(models / _REC_MODEL),
        "EngineConfig.onnxruntime.intra_op_num_threads": OCR_THREADS,
    }


def _engine() -> Any:
    """The process's RapidOCR engine, created on first use (double-checked under a lock)."""
    global _ENGINE
    if _ENGINE is None:
        with _ENGINE_LOCK:
            if _ENGINE is None:
                from rapidocr import RapidOCR

                _ENGINE = RapidOCR(params=ocr_params())
    return _ENGINE


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def engine_info(*, ocr: bool = True) -> dict[str, Any]:
    """What reads the text, for the audit record: versions, ``use_cls`` and the ONNX models' SHA-256.

    With ``ocr=False`` (a PDF read from its text layer only) just the text step's version.
    """
    global _ENGINE_INFO
    if not ocr:
        return {"name": "pypdf", "text_version": TEXT_VERSION, "ocr": False}
    if _ENGINE_INFO is None:
        models = _model_dir()
        info: dict[str, Any] = {
            "name": "rapidocr",
            "version": version("rapidocr"),
            "onnxruntime": version("onnxruntime"),
            "use_cls": False,
            "det_box_thresh": DET_BOX_THRESH,
            "models": {name: _sha256(models / name) for name in (_DET_MODEL, _REC_MODEL)},
            "text_version": TEXT_VERSION,
            "ocr": True,
        }
        _ENGINE_INFO = info
    return {**_ENGINE_INFO, "models": dict(_ENGINE_INFO["models"])}


def text_result_from_json(data: dict[str, Any]) -> TextResult:
    """The :class:`TextResult` that ``to_json`` wrote (to replay a stored reading through ``structure``)."""
    pages = []
    for page in data["pages"]:
        segments = tuple(
            Segment(s["text"], float(s["score"]), Box(**s["box"]) if s["box"] is not None else None)
            for s in page["segments"]
        )
        pages.append(
            PageText(
                number=int(page["number"]),
                source=page["source"],
                width_px=int(page["width_px"]),
                height_px=int(page["height_px"]),
                segments=segments,
                rotation_deg=int(page.get("rotation_deg", 0)),
                seconds=float(page.get("seconds", 0.0)),
            )
        )
    return TextResult(pages=tuple(pages), engine=dict(data.get("engine", {})))
