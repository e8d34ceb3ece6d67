"""Write a set of generated lab reports and their truth.

    .venv/bin/python -m screening.synth OUT_DIR --count 30 --variants clean,scan,photo --pdf --negatives 20

Files are ``<id>-<variant>.png|jpg`` (``r0001-clean.png``, ``r0001-photo.jpg``), with ``--pdf`` also
``<id>-pdf.pdf`` (text layer) and ``<id>-pdf_image.pdf`` (image only), and negatives ``n0001-<kind>.jpg``.
``truth.json`` lists one entry per report: ``ReportSpec.to_json()`` plus ``id`` and ``files`` (variant →
file name); negatives have ``report_type`` ``"not_a_report"`` and their ``kind``. Report types rotate and
layouts cycle, so any count of 15 or more covers every type in every layout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from . import render_pdf
from .negatives import NEGATIVE_KINDS, make_negative
from .render import VARIANTS, Variant, jpeg_bytes, render_bytes
from .spec import DEFAULT_TODAY, LAYOUTS, make_spec
from .truth import REPORT_TYPES


def _variants(text: str) -> tuple[Variant, ...]:
    chosen = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown variants {unknown}; choose from {','.join(VARIANTS)}")
    return cast(tuple[Variant, ...], chosen)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m screening.synth", description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--count", type=int, default=30, help="reports to generate (default 30)")
    parser.add_argument(
        "--variants", type=_variants, default=VARIANTS, help="comma-separated: clean,scan,photo"
    )
    parser.add_argument("--pdf", action="store_true", help="also write a text-layer and an image-only PDF")
    parser.add_argument("--negatives", type=int, default=0, help="non-report images to add (kinds rotate)")
    parser.add_argument("--seed", type=int, default=0, help="first seed; report i uses seed + i")
    parser.add_argument(
        "--today", type=dt.date.fromisoformat, default=DEFAULT_TODAY, help="collection dates fall before it"
    )
    return parser


def generate(
    out_dir: Path,
    *,
    count: int,
    variants: Sequence[Variant] = VARIANTS,
    pdf: bool = False,
    negatives: int = 0,
    seed: int = 0,
    today: dt.date = DEFAULT_TODAY,
) -> list[dict[str, Any]]:
    """Write the files and ``truth.json`` into ``out_dir``; returns the truth entries."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    for i in range(count):
        spec = make_spec(
            seed + i,
            REPORT_TYPES[i % len(REPORT_TYPES)],
            layout=LAYOUTS[(i // len(REPORT_TYPES)) % len(LAYOUTS)],
            today=today,
        )
        report_id = f"r{i + 1:04d}"
        files: dict[str, str] = {}
        for variant in variants:
            data, ext = render_bytes(spec, variant)
            files[variant] = f"{report_id}-{variant}.{ext}"
            (out_dir / files[variant]).write_bytes(data)
        if pdf:
            for name, text_layer in (("pdf", True), ("pdf_image", False)):
                files[name] = f"{report_id}-{name}.pdf"
                (out_dir / files[name]).write_bytes(render_pdf(spec, text_layer=text_layer))
        entries.append({"id": report_id, "files": files, **spec.to_json()})
    for j in range(negatives):
        kind = NEGATIVE_KINDS[j % len(NEGATIVE_KINDS)]
        image, label = make_negative(seed + 1_000_000 + j, kind)
        negative_id = f"n{j + 1:04d}"
        name = f"{negative_id}-{kind}.jpg"
        (out_dir / name).write_bytes(jpeg_bytes(image.convert("RGB"), 90))
        entries.append(
            {"id": negative_id, "files": {"image": name}, "report_type": "not_a_report", "kind": label}
        )
    truth = json.dumps(entries, ensure_ascii=False, indent=1) + "\n"
    (out_dir / "truth.json").write_text(truth, encoding="utf-8")
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    entries = generate(
        args.out_dir,
        count=args.count,
        variants=args.variants,
        pdf=args.pdf,
        negatives=args.negatives,
        seed=args.seed,
        today=args.today,
    )
    files = sum(len(entry["files"]) for entry in entries)
    seconds = time.perf_counter() - started
    print(f"{len(entries)} entries, {files} files in {args.out_dir} ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
