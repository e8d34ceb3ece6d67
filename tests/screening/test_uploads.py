"""Upload hardening, one test per rule, on generated files (no database: ``inspect_and_derive`` is pure)."""

from __future__ import annotations

import io
import struct
import zlib

import pypdf
import pytest
from PIL import Image

from screening.uploads import AppError, inspect_and_derive, sniff
from tests.screening import samples


def _refusal(data: bytes) -> str:
    with pytest.raises(AppError) as refused:
        inspect_and_derive(data)
    assert refused.value.message  # every refusal tells the patient something
    return refused.value.code


def _png_chunk_types(data: bytes) -> list[bytes]:
    types, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        types.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return types


# --- What is accepted, and what the derivative keeps --------------------------------------------------------


def test_a_jpeg_photo_is_accepted_and_re_encoded() -> None:
    original = samples.jpeg((64, 48))
    derived = inspect_and_derive(original)
    assert (derived.kind, derived.content_type, derived.extension) == ("jpeg", "image/jpeg", "jpg")
    assert (derived.width_px, derived.height_px, derived.page_count) == (64, 48, None)
    assert derived.byte_size == len(original) and len(derived.sha256) == 64
    assert derived.data != original


def test_the_jpeg_derivative_has_no_exif_gps_comment_or_icc() -> None:
    derived = inspect_and_derive(samples.jpeg())
    with Image.open(io.BytesIO(derived.data)) as img:
        assert not img.getexif()
        assert not img.getexif().get_ifd(samples.GPS_IFD)
        assert "comment" not in img.info and "icc_profile" not in img.info and "xmp" not in img.info
    for leak in (b"Exif", b"PhoneMaker", b"MRN", b"13900000000", "王小明".encode()):
        assert leak not in derived.data


def test_the_png_derivative_has_no_text_chunks_exif_or_gps() -> None:
    original = samples.png()
    assert (
        b"tEXt" in original and b"iTXt" in original and b"eXIf" in original
    )  # the sample really carries them
    derived = inspect_and_derive(original)
    assert derived.content_type == "image/png"
    assert _png_chunk_types(derived.data) == [b"IHDR", b"IDAT", b"IEND"]
    with Image.open(io.BytesIO(derived.data)) as img:
        assert not img.getexif() and not img.text  # type: ignore[attr-defined]
    assert "王小明".encode() not in derived.data and b"MRN" not in derived.data


def test_exif_orientation_is_applied_so_a_sideways_photo_stands_up() -> None:
    derived = inspect_and_derive(samples.jpeg((2, 1), orientation=6))
    assert (derived.width_px, derived.height_px) == (1, 2)
    with Image.open(io.BytesIO(derived.data)) as img:
        assert img.size == (1, 2)
        assert samples.ORIENTATION not in img.getexif()


def test_an_iphone_heic_photo_becomes_a_jpeg() -> None:
    derived = inspect_and_derive(samples.heic((40, 30)))
    assert (derived.kind, derived.content_type, derived.width_px, derived.height_px) == (
        "heic", "image/jpeg", 40, 30)  # fmt: skip
    with Image.open(io.BytesIO(derived.data)) as img:
        assert img.format == "JPEG" and not img.getexif()


def test_a_16_bit_grey_scan_is_scaled_not_clipped() -> None:
    scan = Image.new("I;16", (20, 10), 0x8000)  # mid grey in 16 bits
    out = io.BytesIO()
    scan.save(out, "PNG")
    derived = inspect_and_derive(out.getvalue())
    with Image.open(io.BytesIO(derived.data)) as img:
        assert img.mode == "L" and img.getpixel((0, 0)) == 128


def test_a_transparent_png_keeps_its_alpha() -> None:
    derived = inspect_and_derive(samples.png(mode="RGBA"))
    with Image.open(io.BytesIO(derived.data)) as img:
        assert img.mode == "RGBA"


def test_a_pdf_is_rewritten_with_its_pages_only() -> None:
    derived = inspect_and_derive(samples.pdf(pages=2, author="王小明"))
    assert (derived.kind, derived.content_type, derived.page_count) == ("pdf", "application/pdf", 2)
    assert derived.width_px is None
    reader = pypdf.PdfReader(io.BytesIO(derived.data))
    assert len(reader.pages) == 2
    assert not reader.metadata
    assert b"Author" not in derived.data and b"Creatinine" not in derived.data


def test_link_annotations_are_not_copied_into_the_pdf_derivative() -> None:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    from pypdf.annotations import Link

    writer.add_annotation(0, Link(rect=(10, 10, 50, 50), url="https://example.org/"))
    out = io.BytesIO()
    writer.write(out)
    derived = inspect_and_derive(out.getvalue())
    page = pypdf.PdfReader(io.BytesIO(derived.data)).pages[0]
    assert "/Annots" not in page and b"example.org" not in derived.data


# --- Sniffing, allowlist, size ------------------------------------------------------------------------------


def test_the_type_comes_from_the_content_not_the_name() -> None:
    assert sniff(samples.jpeg()) == "jpeg" and sniff(samples.png()) == "png"
    assert sniff(samples.heic()) == "heic" and sniff(samples.pdf()) == "pdf"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 200, id="windows-exe-named-jpg"),
        pytest.param(b"<html><body onload='alert(1)'>report</body></html>", id="html-named-png"),
        pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', id="svg-named-png"),
        pytest.param(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", id="gif"),
        pytest.param(b"II*\x00\x08\x00\x00\x00" + b"\x00" * 64, id="tiff-named-jpg"),
        pytest.param(samples.zip_bytes(), id="zip"),
    ],
)
def test_a_file_outside_the_allowlist_is_refused_whatever_its_name(data: bytes) -> None:
    assert _refusal(data) == "type_not_allowed"


def test_an_empty_file_is_refused() -> None:
    assert _refusal(b"") == "empty"


def test_a_file_over_the_size_cap_is_refused(settings) -> None:  # type: ignore[no-untyped-def]
    original = samples.jpeg()
    settings.SCREENING_MAX_UPLOAD_BYTES = len(original) - 1
    assert _refusal(original) == "too_large"
    settings.SCREENING_MAX_UPLOAD_BYTES = len(original)
    assert inspect_and_derive(original).kind == "jpeg"


# --- Pixels, truncation -------------------------------------------------------------------------------------


def test_a_decompression_bomb_small_on_disk_is_refused() -> None:
    bomb = samples.png_bomb(12_000, 12_000)  # 144 megapixels in a few hundred bytes
    assert len(bomb) < 1024
    assert _refusal(bomb) == "too_many_pixels"


def test_pillows_bomb_warning_is_an_error_even_when_our_cap_is_higher(settings) -> None:  # type: ignore[no-untyped-def]
    settings.SCREENING_MAX_IMAGE_PIXELS = 10**9  # only Pillow's own limit (89 MP, a warning) is left
    assert _refusal(samples.png_bomb(10_000, 10_000)) == "too_many_pixels"


def test_the_pixel_cap_comes_from_the_settings(settings) -> None:  # type: ignore[no-untyped-def]
    settings.SCREENING_MAX_IMAGE_PIXELS = 64 * 48 - 1
    assert _refusal(samples.jpeg((64, 48))) == "too_many_pixels"


def test_a_truncated_jpeg_is_refused() -> None:
    whole = samples.jpeg((300, 300))
    assert _refusal(whole[: len(whole) // 2]) == "truncated"


def test_a_png_whose_pixel_data_breaks_off_is_refused_by_the_full_decode() -> None:
    img = Image.frombytes("L", (200, 200), bytes(range(256)) * 156 + bytes(64))
    out = io.BytesIO()
    img.save(out, "PNG")
    data = out.getvalue()
    idat = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[idat : idat + 4])
    half = data[idat + 8 : idat + 8 + length // 2]
    cut = struct.pack(">I", len(half)) + b"IDAT" + half + struct.pack(">I", zlib.crc32(b"IDAT" + half))
    broken = data[:idat] + cut + data[idat + 12 + length :]  # structurally whole: IHDR, IDAT, IEND
    assert _refusal(broken) in {"truncated", "unreadable"}


def test_a_png_with_a_bad_checksum_is_refused() -> None:
    data = bytearray(samples.png())
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF  # flip a byte inside the compressed pixels; the CRC no longer matches
    assert _refusal(bytes(data)) in {"unreadable", "truncated"}


# --- Polyglots ----------------------------------------------------------------------------------------------


def test_a_jpeg_with_a_zip_behind_it_is_refused() -> None:
    assert _refusal(samples.jpeg() + samples.zip_bytes()) == "polyglot"


def test_a_png_with_trailing_html_is_refused() -> None:
    assert _refusal(samples.png() + b"<html><script>alert(1)</script></html>") == "polyglot"


def test_a_jpeg_with_a_pdf_behind_it_is_refused() -> None:
    assert _refusal(samples.jpeg() + samples.pdf()) == "polyglot"


def test_a_jpeg_hiding_html_in_its_comment_is_refused() -> None:
    assert _refusal(samples.jpeg(comment=b"<html><script>alert(1)</script>")) == "polyglot"


def test_a_pdf_with_a_zip_after_its_end_is_refused() -> None:
    assert _refusal(samples.pdf() + samples.zip_bytes()) == "polyglot"


def test_a_pdf_with_html_after_its_end_is_refused() -> None:
    assert _refusal(samples.pdf() + b"<html><script>alert(1)</script></html>") == "polyglot"


def test_a_heic_with_data_after_its_boxes_is_refused() -> None:
    assert _refusal(samples.heic() + samples.zip_bytes()) == "polyglot"


def test_a_multi_picture_jpeg_with_its_second_image_behind_the_first_is_accepted() -> None:
    # Ultra HDR and gain-map JPEGs (MPF) append whole JPEGs; the derivative keeps the primary picture only.
    derived = inspect_and_derive(samples.jpeg((64, 48)) + samples.jpeg((16, 12)))
    assert (derived.width_px, derived.height_px) == (64, 48)
    assert derived.data.count(b"\xff\xd8\xff") == 1


def test_a_zip_behind_a_multi_picture_jpeg_is_still_refused() -> None:
    assert _refusal(samples.jpeg() + samples.jpeg((16, 12)) + samples.zip_bytes()) == "polyglot"


def test_padding_after_the_end_marker_is_tolerated() -> None:
    assert inspect_and_derive(samples.jpeg() + b"\x00" * 16).kind == "jpeg"
    assert inspect_and_derive(samples.pdf() + b"\r\n").kind == "pdf"


# --- PDFs ---------------------------------------------------------------------------------------------------


def test_an_encrypted_pdf_is_refused() -> None:
    assert _refusal(samples.pdf_encrypted()) == "pdf_encrypted"


def test_a_pdf_with_javascript_is_refused() -> None:
    assert _refusal(samples.pdf_javascript()) == "pdf_active_content"


def test_a_pdf_with_an_embedded_file_is_refused() -> None:
    assert _refusal(samples.pdf_attachment()) == "pdf_active_content"


def test_a_pdf_with_too_many_pages_is_refused(settings) -> None:  # type: ignore[no-untyped-def]
    settings.SCREENING_MAX_PDF_PAGES = 3
    assert inspect_and_derive(samples.pdf(pages=3)).page_count == 3
    assert _refusal(samples.pdf(pages=4)) == "too_many_pages"


def test_a_pdf_that_does_not_parse_is_refused() -> None:
    assert _refusal(b"%PDF-1.7\nthis is not a pdf\n%%EOF\n") == "unreadable"


def test_stray_bytes_between_jpeg_segments_are_skipped_unless_they_hide_a_file() -> None:
    data = samples.jpeg()
    second_segment = data.index(b"\xff", 2 + 2 + int.from_bytes(data[4:6], "big"))
    assert inspect_and_derive(data[:second_segment] + b"\x00\x00" + data[second_segment:]).kind == "jpeg"
    hidden = data[:second_segment] + b"<html><script>alert(1)</script>" + data[second_segment:]
    assert _refusal(hidden) == "polyglot"


def test_truncated_images_are_never_loaded_even_if_someone_allowed_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError):
        inspect_and_derive(samples.jpeg())
