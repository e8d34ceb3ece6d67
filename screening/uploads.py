"""Hardened uploads: sniff the bytes, refuse what is not plainly one allowed file, derive a clean copy.

Everything downstream (OCR, staff review, the patient's own view) uses the *derivative*: images
re-encoded from pixels only (no EXIF, GPS, ICC, comments or XMP; EXIF orientation applied), PDFs re-written
with their pages only. The client's file name and content type are never trusted: the type comes from the
first bytes and is confirmed by a full decode.

Steps of ``inspect_and_derive``:

1. refuse empty and oversized files (``SCREENING_MAX_UPLOAD_BYTES``);
2. sniff the kind from magic bytes against the allowlist (JPEG, PNG, HEIC/HEIF, PDF);
3. walk the container's structure to its end marker and refuse trailing or embedded foreign data (polyglots);
4. decode it fully: images with a pixel cap (bomb warnings are errors), ``verify()``, then ``load()`` on a
   fresh open; PDFs with pypdf, refusing encryption, active content, attachments and too many pages;
5. build the derivative.

Django's and DRF's ``ImageField`` do none of 3-5 (the reference measured both accepting a truncated JPEG, a
JPEG+ZIP polyglot and a 144-megapixel PNG bomb).
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

import pillow_heif
import pypdf
from django.conf import settings
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError
from pypdf import generic as pdf
from pypdf.errors import PdfReadWarning, PyPdfError

from core.errors import AppError

pillow_heif.register_heif_opener()

# The caps are settings (SCREENING_MAX_UPLOAD_BYTES, _IMAGE_PIXELS, _PDF_PAGES): phones take 12-megapixel
# photos, a few 48-50 (reference §5.2), and a 50-MP RGB image is ~150 MB decoded.
JPEG_QUALITY = 90

# Signatures of other containers that must not hide inside or behind an allowed file.
FOREIGN_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x01\x02", b"%PDF-", b"<html", b"<script", b"<svg",
                      b"<!doctype", b"Rar!\x1a\x07", b"7z\xbc\xaf\x27\x1c")  # fmt: skip
# A ZIP reader looks for its end record in the last 64 KiB + 22 bytes of a file, whatever comes before.
ZIP_TAIL_BYTES = 65_557
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
# Actions and objects that make a PDF do something besides showing pages.
PDF_ACTIVE_KEYS = {"/JS", "/JavaScript", "/EmbeddedFiles", "/EF", "/XFA", "/RichMedia", "/Launch"}
PDF_ACTIVE_ACTIONS = {"/JavaScript", "/Launch", "/ImportData", "/SubmitForm", "/GoToE", "/GoToR",
                      "/Rendition", "/Movie", "/Sound"}  # fmt: skip
PDF_ACTIVE_TYPES = {"/EmbeddedFile", "/Filespec", "/FileAttachment", "/RichMedia", "/Movie", "/Sound",
                    "/Screen", "/3D"}  # fmt: skip
PDF_WALK_BUDGET = 200_000  # objects visited at most, so a huge or cyclic object graph cannot hold a worker
PDF_PAGE_DROPPED_KEYS = ("/Annots", "/AA", "/Metadata", "/PieceInfo", "/Thumb", "/B")


@dataclass(frozen=True)
class Derived:
    """What an accepted upload turned into.

    ``kind`` is the sniffed type of the original; ``data`` is the derivative, of ``content_type`` with file
    name ``extension``. ``byte_size`` and ``sha256`` describe the original; ``width_px`` and ``height_px``
    the derivative image (after orientation), ``page_count`` a PDF.
    """

    kind: str
    data: bytes
    content_type: str
    extension: str
    byte_size: int
    sha256: str
    width_px: int | None = None
    height_px: int | None = None
    page_count: int | None = None


def max_upload_bytes() -> int:
    return settings.SCREENING_MAX_UPLOAD_BYTES


def max_image_pixels() -> int:
    return settings.SCREENING_MAX_IMAGE_PIXELS


def max_pdf_pages() -> int:
    return settings.SCREENING_MAX_PDF_PAGES


class Readable(Protocol):
    def read(self, size: int, /) -> Any: ...


def read_capped(stream: Readable) -> bytes:
    """At most one byte more than the size cap: enough for ``inspect_and_derive`` to refuse an oversized
    file without holding all of it in memory (the proxy's request body limit is the first line)."""
    return cast(bytes, stream.read(max_upload_bytes() + 1))


# --- Refusals (one place for the messages the patient reads) ------------------------------------------------


def _empty() -> AppError:
    return AppError("empty")


def _too_large(limit: int) -> AppError:
    return AppError("too_large", mb=max(1, limit // (1024 * 1024)))


def _type_not_allowed() -> AppError:
    return AppError("type_not_allowed")


def _too_many_pixels() -> AppError:
    return AppError("too_many_pixels")


def _truncated() -> AppError:
    return AppError("truncated")


def _polyglot() -> AppError:
    return AppError("polyglot")


def _unreadable() -> AppError:
    return AppError("unreadable")


# --- Sniffing and structure ---------------------------------------------------------------------------------


def sniff(data: bytes) -> str | None:
    """The allowed kind the first bytes announce, or None. Never looks at a name or a content type.

    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n...."), sniff(b"%PDF-1.7\\n"), sniff(b"MZ\\x90\\x00"), sniff(b"<html>")
    ('png', 'pdf', None, None)
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "heic"
    return None


def _has_foreign_signature(chunk: bytes) -> bool:
    lowered = chunk.lower()
    return any(signature.lower() in lowered for signature in FOREIGN_SIGNATURES)


def _scan_end(data: bytes, pos: int) -> int:
    """Offset of the first marker after entropy-coded data (FF00 is an escaped byte, FFD0-FFD7 restarts)."""
    while True:
        pos = data.find(b"\xff", pos)  # find() rather than a byte loop: a 20 MB scan in milliseconds
        if pos < 0 or pos + 1 >= len(data):
            raise _truncated()
        following = data[pos + 1]
        if following != 0x00 and not 0xD0 <= following <= 0xD7:
            return pos
        pos += 2


def _jpeg_end(data: bytes, start: int = 0) -> int:
    """Offset just after the end-of-image marker of the JPEG at ``start``, walking its segments (a thumbnail
    inside EXIF has an EOI of its own, so searching for FFD9 is not enough). Refuses foreign data in COM/APP
    segments."""
    pos, size = start + 2, len(data)
    while pos < size:
        if data[pos] != 0xFF:
            # Stray bytes between segments: decoders skip them with a warning, and so do we, unless they
            # hold another file.
            following = data.find(b"\xff", pos)
            if following < 0:
                break
            if _has_foreign_signature(data[pos:following]):
                raise _polyglot()
            pos = following
        while pos < size and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= size:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return pos
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        if pos + 2 > size:
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise _unreadable()
        segment = data[pos + 2 : pos + length]
        if (marker == 0xFE or 0xE0 <= marker <= 0xEF) and _has_foreign_signature(segment):
            raise _polyglot()
        pos += length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            pos = _scan_end(data, pos)
    raise _truncated()


def _png_end(data: bytes) -> int:
    """Offset just after the IEND chunk; refuses foreign data inside ancillary chunks."""
    pos, size = 8, len(data)
    while pos + 8 <= size:
        length, chunk_type = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > size:
            raise _truncated()
        if chunk_type == b"IEND":
            return end
        if chunk_type != b"IDAT" and _has_foreign_signature(data[pos + 8 : pos + 8 + length]):
            raise _polyglot()
        pos = end
    raise _truncated()


def _heif_end(data: bytes) -> int:
    """Offset after the last top-level ISO-BMFF box; boxes must tile the file exactly."""
    pos, size = 0, len(data)
    while pos + 8 <= size:
        box_size, box_type = struct.unpack(">I4s", data[pos : pos + 8])
        if box_size == 1:  # 64-bit size follows
            if pos + 16 > size:
                raise _truncated()
            (box_size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
        elif box_size == 0:  # runs to the end of the file
            box_size = size - pos
        if box_size < 8 or not box_type.isalnum():
            raise _polyglot()
        if pos + box_size > size:
            raise _truncated()
        pos += box_size
    return pos


def _pdf_end(data: bytes) -> int:
    """Offset after the last ``%%EOF`` (incremental updates append whole revisions, each with its own)."""
    found = data.rfind(b"%%EOF")
    if found < 0:
        raise _truncated()
    return found + len(b"%%EOF")


def check_structure(data: bytes, kind: str) -> None:
    """Refuse a polyglot: anything but padding after the format's end marker, foreign containers inside
    metadata, or a ZIP end record where ZIP readers look for one.

    >>> check_structure(b"%PDF-1.7\\n...\\n%%EOF\\n", "pdf")
    >>> check_structure(b"%PDF-1.7\\n...\\n%%EOF\\n<html>", "pdf")
    Traceback (most recent call last):
    ...
    core.errors.AppError: polyglot: ...
    """
    ends: dict[str, Callable[[bytes], int]] = {"jpeg": _jpeg_end, "png": _png_end, "heic": _heif_end,
                                               "pdf": _pdf_end}  # fmt: skip
    end = ends[kind](data)
    if kind == "jpeg":
        # Multi-picture JPEGs (MPF: Android Ultra HDR and iPhone gain maps, depth maps) append whole JPEGs
        # after the first one. Those are allowed, each walked like the first; nothing else is.
        while data[end : end + 3] == b"\xff\xd8\xff":
            end = _jpeg_end(data, end)
    trailing = data[end:]
    # Some cameras and PDF writers pad with zeros or line ends; anything else is a second file.
    if trailing.strip(b"\x00\r\n\t \x0c"):
        raise _polyglot()
    if b"PK\x05\x06" in data[-ZIP_TAIL_BYTES:]:
        raise _polyglot()


# --- Images -------------------------------------------------------------------------------------------------

PILLOW_FORMATS = {"jpeg": ["JPEG"], "png": ["PNG"], "heic": ["HEIF"]}


def _pixels_only(img: Image.Image, *, keep_alpha: bool) -> Image.Image:
    """A new image holding only ``img``'s pixels: no info dict, EXIF, ICC profile, comment or text chunks.

    (``convert`` and ``copy`` carry ``info`` along, and a JPEG save writes ``info["comment"]`` back.)
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    has_alpha = "A" in img.getbands() or "transparency" in img.info
    if has_alpha:
        img = img.convert("RGBA")
        if not keep_alpha:
            flat = Image.new("RGB", img.size, "white")
            flat.paste(img, mask=img.getchannel("A"))
            img = flat
    elif img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    clean = Image.new(img.mode, img.size)
    clean.paste(img)
    return clean


def _derive_image(data: bytes, kind: str, sha256: str) -> Derived:
    formats = PILLOW_FORMATS[kind]
    limit = max_image_pixels()
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # set elsewhere in the process, it would let truncated files through
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; here a warning is a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=formats) as probe:
                width, height = probe.size
                if width * height > limit:
                    raise _too_many_pixels()
                probe.verify()  # checksums; an object is unusable after verify(), so reopen below
            with Image.open(io.BytesIO(data), formats=formats) as img:
                img.load()  # decodes everything: catches truncation that verify() passes
                ImageOps.exif_transpose(img, in_place=True)  # in place: one decoded copy fewer in memory
                clean = _pixels_only(img, keep_alpha=kind == "png")
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _too_many_pixels() from None
    except UnidentifiedImageError:
        raise _unreadable() from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError) as exc:
        raise (_truncated() if "truncated" in str(exc).lower() else _unreadable()) from None
    out = io.BytesIO()
    if kind == "png":
        clean.save(out, "PNG", optimize=False)
        content_type, extension = "image/png", "png"
    else:  # JPEG stays JPEG; HEIC becomes JPEG, which every browser and OCR step can read
        clean.save(out, "JPEG", quality=JPEG_QUALITY)
        content_type, extension = "image/jpeg", "jpg"
    return Derived(
        kind=kind,
        data=out.getvalue(),
        content_type=content_type,
        extension=extension,
        byte_size=len(data),
        sha256=sha256,
        width_px=clean.width,
        height_px=clean.height,
    )


# --- PDFs ---------------------------------------------------------------------------------------------------


def _pdf_objects(root: Any) -> Iterator[Any]:
    """Every dictionary reachable from ``root`` (streams included), each once, within a budget of
    containers visited. Stream data is never decoded."""
    containers = (pdf.IndirectObject, pdf.DictionaryObject, pdf.ArrayObject)
    seen: set[tuple[int, int]] = set()
    stack = [root]
    visited = 0
    while stack:
        item = stack.pop()
        if isinstance(item, pdf.IndirectObject):
            key = (item.idnum, item.generation)
            if key in seen:
                continue
            seen.add(key)
            item = item.get_object()
        visited += 1
        if visited > PDF_WALK_BUDGET:
            raise _unreadable()
        if isinstance(item, pdf.DictionaryObject):  # streams are dictionaries too
            yield item
            stack.extend(value for value in item.values() if isinstance(value, containers))
        elif isinstance(item, pdf.ArrayObject):
            stack.extend(value for value in item if isinstance(value, containers))


def _pdf_is_active(item: Any) -> bool:
    if any(key in item for key in PDF_ACTIVE_KEYS):
        return True
    if item.get("/S") in PDF_ACTIVE_ACTIONS:
        return True
    return item.get("/Type") in PDF_ACTIVE_TYPES or item.get("/Subtype") in PDF_ACTIVE_TYPES


def _derive_pdf(data: bytes, sha256: str) -> Derived:
    try:
        with warnings.catch_warnings():
            # pypdf warns about (and repairs) sloppy but harmless files; refusals are decided below.
            warnings.simplefilter("ignore", PdfReadWarning)
            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                raise AppError("pdf_encrypted")
            page_count = len(reader.pages)
            if page_count == 0:
                raise _unreadable()
            if page_count > max_pdf_pages():
                raise AppError("too_many_pages", n=max_pdf_pages())
            if any(_pdf_is_active(item) for item in _pdf_objects(reader.trailer)):
                raise AppError("pdf_active_content")
            writer = pypdf.PdfWriter()
            for page in reader.pages:
                for (
                    key
                ) in PDF_PAGE_DROPPED_KEYS:  # dropped before copying, so nothing they point to is copied
                    page.pop(key, None)
                writer.add_page(page)
            writer.metadata = None  # no document information (author, producer, dates)
            out = io.BytesIO()
            writer.write(out)
    except AppError:
        raise
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, struct.error):  # fmt: skip
        raise _unreadable() from None
    return Derived(
        kind="pdf",
        data=out.getvalue(),
        content_type="application/pdf",
        extension="pdf",
        byte_size=len(data),
        sha256=sha256,
        page_count=page_count,
    )


# --- The one entry point ------------------------------------------------------------------------------------


def inspect_and_derive(data: bytes) -> Derived:
    """Check an uploaded file and build its clean derivative, or raise ``AppError``.

    Pure apart from reading the ``SCREENING_MAX_*`` settings: no database, no storage. Slow on large files
    (a full decode), so call it outside any transaction.
    """
    if not data:
        raise _empty()
    limit = max_upload_bytes()
    if len(data) > limit:
        raise _too_large(limit)
    kind = sniff(data)
    if kind is None:
        raise _type_not_allowed()
    check_structure(data, kind)
    sha256 = hashlib.sha256(data).hexdigest()
    if kind == "pdf":
        return _derive_pdf(data, sha256)
    return _derive_image(data, kind, sha256)
