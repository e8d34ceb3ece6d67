"""The committed OCR fixtures in ``tests/screening/fixtures/``, and how to regenerate them.

    .venv/bin/python -m screening.synth.fixtures tests/screening/fixtures

writes a renal-function report for a 70-year-old man with creatinine 88 µmol/L collected on 2026-11-20:
``renal-70m-clean.png``, ``renal-70m-scan.jpg``, ``renal-70m-photo.jpg``, ``renal-70m.pdf`` (text layer),
``renal-70m-image.pdf`` (image only) and ``renal-70m.truth.json`` (the spec, ``ReportSpec.to_json()``).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from .pdf import render_pdf
from .render import VARIANTS, render_bytes
from .spec import make_spec
from .truth import ReportSpec


def renal_70m_spec() -> ReportSpec:
    return make_spec(
        2026,
        "renal_function",
        sex="M",
        age=70,
        values={"creatinine": 88},
        collected_on=dt.date(2026, 11, 20),
        layout="grid",
        font="noto-sans-sc",
        date_format="%Y-%m-%d",
    )


def write_fixtures(out_dir: Path) -> list[Path]:
    """Render the fixtures into ``out_dir``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = renal_70m_spec()
    written = []
    for variant in VARIANTS:
        data, ext = render_bytes(spec, variant)
        written.append(out_dir / f"renal-70m-{variant}.{ext}")
        written[-1].write_bytes(data)
    written.append(out_dir / "renal-70m.pdf")
    written[-1].write_bytes(render_pdf(spec))
    written.append(out_dir / "renal-70m-image.pdf")
    written[-1].write_bytes(render_pdf(spec, text_layer=False))
    written.append(out_dir / "renal-70m.truth.json")
    written[-1].write_text(json.dumps(spec.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return written


if __name__ == "__main__":
    for path in write_fixtures(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/screening/fixtures")):
        print(path, path.stat().st_size)
