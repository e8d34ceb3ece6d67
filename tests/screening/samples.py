"""Generated upload samples: real files made with Pillow and pypdf, and hostile ones built byte by byte."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pypdf
from PIL import Image, ImageDraw

ORIENTATION = 0x0112
GPS_IFD = 0x8825


def _exif(*, orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x010E] = "王小明 MRN 0012345"  # ImageDescription with personal data
    if orientation is not None:
        exif[ORIENTATION] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (31.0, 13.0, 0.0), 3: "E", 4: (121.0, 28.0, 0.0)})  # Shanghai
    return exif


def _picture(size: tuple[int, int], colour: str = "white") -> Image.Image:
    img = Image.new("RGB", size, colour)
    if min(size) > 4:
        ImageDraw.Draw(img).rectangle((1, 1, size[0] // 2, size[1] // 2), fill="black")
    return img


def jpeg(
    size: tuple[int, int] = (64, 48), *, orientation: int | None = 1, comment: bytes = b"call 13900000000"
) -> bytes:
    """A JPEG with EXIF (maker, description, GPS, orientation) and a COM comment holding a phone number."""
    out = io.BytesIO()
    _picture(size).save(out, "JPEG", exif=_exif(orientation=orientation), comment=comment, quality=90)
    return out.getvalue()


def png(size: tuple[int, int] = (64, 48), *, mode: str = "RGB") -> bytes:
    """A PNG with EXIF (GPS) and tEXt/iTXt chunks holding personal data."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "王小明")  # not Latin-1: written as iTXt
    info.add_text("Source", "MRN 0012345 scanner")
    info.add_itxt("Comment", "MRN 0012345", lang="en")
    out = io.BytesIO()
    _picture(size).convert(mode).save(out, "PNG", pnginfo=info, exif=_exif())
    return out.getvalue()


def heic(size: tuple[int, int] = (64, 48)) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    _picture(size).save(out, "HEIF", exif=_exif(orientation=1), quality=80)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 12_000, height: int = 12_000) -> bytes:
    """A PNG header announcing ``width`` x ``height`` grey pixels, with one tiny IDAT: a few hundred bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + (_chunk(b"IEND", b""))
    )


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("index.html", "<html><script>alert(document.cookie)</script></html>")
    return out.getvalue()


def pdf(*, pages: int = 1, author: str = "王小明") -> bytes:
    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Author": author, "/Title": "Creatinine 88 umol/L"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_huge_page(width_pt: float = 7200, height_pt: float = 7200) -> bytes:
    """A tiny PDF (about 600 bytes) whose one blank page declares a 7200 x 7200 pt (100 x 100 inch) box."""
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=width_pt, height=height_pt)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _pdf_with(change) -> bytes:  # type: ignore[no-untyped-def]
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=595, height=842)
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_encrypted() -> bytes:
    return _pdf_with(lambda writer: writer.encrypt("secret", algorithm="AES-128"))


def pdf_javascript() -> bytes:
    """A PDF that runs JavaScript when opened."""
    from pypdf.generic import DictionaryObject, NameObject, TextStringObject

    def change(writer: pypdf.PdfWriter) -> None:
        action = DictionaryObject(
            {
                NameObject("/S"): NameObject("/JavaScript"),
                NameObject("/JS"): TextStringObject("app.alert(1);"),
            }
        )
        writer.root_object[NameObject("/OpenAction")] = writer._add_object(action)

    return _pdf_with(change)


def pdf_attachment() -> bytes:
    return _pdf_with(lambda writer: writer.add_attachment("payload.exe", b"MZ\x90\x00 not really"))
