"""The fonts the generator draws with: three faces of Debian's ``fonts-noto-cjk``, from fixed files.

Pinned rather than "whatever CJK font is installed": the benchmark's figures and the training pages depend on
the glyphs, and a machine that also had WenQuanYi installed drew other reports from the same seeds (the
README's photo figure did not reproduce there). So every report is drawn in one of ``FONT_KEYS``, each a
face (found by its family name) of one named file in ``font_dir()``; a missing file is an error that names the
package, never a silent fallback. ``SCREENING_SYNTH_FONT_DIR`` points elsewhere (a folder of the same files).

``PINNED_SHA256`` are the files of Debian bookworm's ``fonts-noto-cjk 1:20220127+repack1-1`` (what CI
installs); ``font_check()`` says whether this machine's files are those, and the benchmark prints it beside
its figures.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

FONT_PACKAGE = "fonts-noto-cjk"
DEFAULT_FONT_DIR = "/usr/share/fonts/opentype/noto"


@dataclass(frozen=True)
class PinnedFont:
    family: str  # the family name the face reports
    regular: str  # file name in FONT_DIR
    bold: str


# Our key -> the face and its files. A report's font is drawn from these keys, in this order.
FONTS: dict[str, PinnedFont] = {
    "noto-sans-sc": PinnedFont("Noto Sans CJK SC", "NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc"),
    "noto-serif-sc": PinnedFont("Noto Serif CJK SC", "NotoSerifCJK-Regular.ttc", "NotoSerifCJK-Bold.ttc"),
    "noto-sans-mono-sc": PinnedFont(
        "Noto Sans Mono CJK SC", "NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc"
    ),
}
FONT_KEYS: tuple[str, ...] = tuple(FONTS)
PINNED_SHA256: dict[str, str] = {
    "NotoSansCJK-Regular.ttc": "b76b0433203017ca80401b2ee0dd69350349871c4b19d504c34dbdd80541690a",
    "NotoSansCJK-Bold.ttc": "faa5f3656a78b2e2d450d27fe8382c778bc2b6bb5ea29c986664a6a435056ceb",
    "NotoSerifCJK-Regular.ttc": "a04178ec485dffdff7cc0c0c20e1fce9202d7e2160d805e8e44a4c8841c58481",
    "NotoSerifCJK-Bold.ttc": "a5d4b046c127da3d7c72f98b46c41489cd29bf52abfdf18aba920903e920d4ac",
}


class FontNotFoundError(RuntimeError):
    pass


def font_dir() -> Path:
    return Path(os.environ.get("SCREENING_SYNTH_FONT_DIR") or DEFAULT_FONT_DIR)


def _require(file_name: str) -> Path:
    path = font_dir() / file_name
    if not path.is_file():
        raise FontNotFoundError(
            f"the report generator draws with {FONT_PACKAGE}, and {path} is missing: install it "
            f"(`apt-get install {FONT_PACKAGE}`) or set SCREENING_SYNTH_FONT_DIR to a folder holding "
            f"{', '.join(sorted(PINNED_SHA256))}"
        )
    return path


@functools.cache
def _face_index(path: str, family: str, style: str) -> int:
    """The index of ``family``/``style`` in the collection ``path`` (a .ttc holds several faces)."""
    for index in range(64):  # Pillow raises past the last face
        try:
            if ImageFont.truetype(path, 12, index=index).getname() == (family, style):
                return index
        except OSError:
            break
    raise FontNotFoundError(f"{path} has no face {family} {style}: not the {FONT_PACKAGE} file expected")


def font_file(key: str, *, bold: bool = False) -> tuple[str, int]:
    """(path, face index) of the pinned font ``key``; ``FontNotFoundError`` when its file is missing."""
    if key not in FONTS:
        raise ValueError(f"unknown font {key!r}; expected one of {FONT_KEYS}")
    pinned = FONTS[key]
    path = str(_require(pinned.bold if bold else pinned.regular))
    return path, _face_index(path, pinned.family, "Bold" if bold else "Regular")


def font_check() -> list[tuple[str, str, bool]]:
    """(file, SHA-256, whether it is the pinned build) of each font file; raises when one is missing."""
    out = []
    for name, pinned in PINNED_SHA256.items():
        digest = hashlib.sha256(_require(name).read_bytes()).hexdigest()
        out.append((name, digest, digest == pinned))
    return out


@functools.lru_cache(maxsize=256)
def get_font(key: str, size_px: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
    path, index = font_file(key, bold=bold)
    return ImageFont.truetype(path, size_px, index=index)
