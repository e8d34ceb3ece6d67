"""Find the CJK fonts installed on this machine (Debian ``fonts-noto-cjk``, ``fonts-wqy-zenhei``, ...).

Detected at run time by scanning the usual font folders and reading each face's family name with Pillow,
so nothing depends on fontconfig. ``SCREENING_SYNTH_FONT_DIRS`` (``os.pathsep``-separated) adds folders.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from PIL import ImageFont

# Our key -> the family name the font file reports. Order is the preference for fallbacks.
FONT_FAMILIES: dict[str, str] = {
    "noto-sans-sc": "Noto Sans CJK SC",
    "noto-serif-sc": "Noto Serif CJK SC",
    "noto-sans-mono-sc": "Noto Sans Mono CJK SC",
    "wqy-zenhei": "WenQuanYi Zen Hei",
    "wqy-microhei": "WenQuanYi Micro Hei",
}
FONT_KEYS: tuple[str, ...] = tuple(FONT_FAMILIES)
_FILE_HINTS = ("cjk", "wqy", "wenquanyi")
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")


class FontNotFoundError(RuntimeError):
    pass


@functools.cache
def _installed_faces() -> dict[tuple[str, str], tuple[str, int]]:
    """(family, style) -> (file, face index) for every CJK face found."""
    dirs = [*os.environ.get("SCREENING_SYNTH_FONT_DIRS", "").split(os.pathsep), *_FONT_DIRS]
    faces: dict[tuple[str, str], tuple[str, int]] = {}
    for folder in dirs:
        root = Path(folder).expanduser() if folder else None
        if root is None or not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            name = path.name.lower()
            if path.suffix.lower() not in (".ttc", ".ttf", ".otf") or not any(h in name for h in _FILE_HINTS):
                continue
            for index in range(32):  # a .ttc holds several faces; Pillow raises past the last one
                try:
                    family, style = ImageFont.truetype(str(path), 12, index=index).getname()
                except OSError:
                    break
                faces.setdefault((family or "", style or ""), (str(path), index))
    return faces


def available_font_keys() -> tuple[str, ...]:
    """Keys of ``FONT_FAMILIES`` with a regular face installed, in preference order."""
    families = {family for family, _ in _installed_faces()}
    return tuple(key for key, family in FONT_FAMILIES.items() if family in families)


def font_file(key: str, *, bold: bool = False) -> tuple[str, int]:
    """(path, face index) of the font ``key``, or of the first installed CJK font if ``key`` is missing.

    Raises ``FontNotFoundError`` with an installation hint when no CJK font is installed at all.
    """
    faces = _installed_faces()
    keys = available_font_keys()
    if not keys:
        raise FontNotFoundError(
            "no CJK font found (looked for Noto CJK SC or WenQuanYi in "
            f"{', '.join(_FONT_DIRS)} and $SCREENING_SYNTH_FONT_DIRS); "
            "install one, e.g. `apt-get install fonts-noto-cjk` or `fonts-wqy-zenhei`"
        )
    family = FONT_FAMILIES[key if key in keys else keys[0]]
    if bold and (family, "Bold") in faces:
        return faces[(family, "Bold")]
    for (fam, style), found in faces.items():
        if fam == family and style in ("Regular", "Book", "Medium", ""):
            return found
    return next(found for (fam, _), found in faces.items() if fam == family)


@functools.lru_cache(maxsize=256)
def get_font(key: str, size_px: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
    path, index = font_file(key, bold=bold)
    return ImageFont.truetype(path, size_px, index=index)
