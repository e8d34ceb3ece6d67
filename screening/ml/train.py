"""Train, evaluate and publish a scoring model from generated pages read by the real OCR pipeline.

    python -m screening.ml.train --task doctype --version 1.0.0 [--reports 72] [--cache var/ml-cache]
    python -m screening.ml.train --task fieldconf --version 1.0.0

Steps:

1. Plan the pages. Every page is its own document with its own seed: generated lab reports (``clean``,
   ``scan``, ``photo`` from ``screening.synth``; a ``heavy`` variant that is a photo shrunk, blurred, noised
   and re-compressed much harder; ``pdf`` digital reports with a text layer) and not-a-report images (blank
   paper, another document, a scene, an unreadable picture).
2. Read each page with ``screening.pipeline.text.read_file`` and structure it with ``structure``. OCR costs
   ≈3 s per page, so each reading is cached as JSON under ``--cache``, keyed by the SHA-256 of the image
   bytes and the reader's version: a rerun with the same generator reads nothing again.
3. Label. Documents: ``is_lab_report`` from the plan; ``is_legible`` when at least 75 % of the printed result
   values were read exactly. Fields: compare every extracted field with the generator's truth (label source
   ``ocr``). PP-OCRv6 reads the normal variants almost perfectly, so for the field model each clean reading
   is also copied a few times with documented corruptions of the OCR text (label source ``injected``, see
   ``CORRUPTIONS``), re-structured by the real parser and labelled against the truth the same way.
4. Split by document seed, within each page kind: one document in four is held out (never trained on,
   never used to choose anything: it only reports), one in four is the calibration set (the thresholds are
   chosen on it), the rest trains. Train, choose thresholds on the calibration set, measure on the held-out
   set, and write the artefact, meta, card and data into ``screening/ml/artefacts/``.

The test fixtures (``screening/ml/fixtures/``, written by ``--write-fixtures``) are pages of their own seeds
(``FIXTURE_JOBS``), outside every plan: no model is trained, calibrated or measured on them.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from PIL import Image, ImageFilter

from screening.ml import doctype, fieldconf, registry
from screening.ml.corrupt import CORRUPTIONS, corrupt
from screening.ml.dataset import LabelledSet, split_by_group
from screening.ml.evaluate import evaluate, subgroups
from screening.ml.features import (
    DOC_FEATURES,
    FIELD_FEATURES,
    document_features,
    field_features,
    field_keys,
    field_value,
    page_stats,
)
from screening.ml.serial import text_result_from_json
from screening.pipeline import structure as structure_step
from screening.pipeline import text as text_step
from screening.pipeline.structure import structure
from screening.pipeline.types import Analyte, Extraction, Field, TextResult, to_json

ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_CACHE: Final = ROOT / "var" / "ml-cache"
RANDOM_STATE: Final = 20261128
LEGIBLE_MIN_FOUND: Final = 0.5  # of the printed result rows, found by the parser
LEGIBLE_MIN_RIGHT: Final = 0.9  # of the rows found, value read exactly
NEGATIVE_KINDS: Final = ("blank", "other_document", "scene", "unreadable")
INJECTED_COPIES: Final = 3  # corrupted copies per cleanly read report page (field model only)

# Seed ranges: one page = one document = one seed, so splitting by seed never splits a document.
SEED_BASE: Final = {"report": 100_000, "heavy": 200_000, "pdf": 300_000, "negative": 400_000}
# The committed test fixtures: pages of seeds no plan draws (a blood count photographed, another document).
FIXTURE_SEED_BASE: Final = 900_000
FIXTURES: Final = Path(__file__).resolve().parent / "fixtures"


@dataclass(frozen=True)
class PageJob:
    """One generated page to read: a report (``variant`` clean/scan/photo/heavy/pdf) or a negative."""

    seed: int
    variant: str
    negative_kind: str = ""

    @property
    def is_report(self) -> bool:
        return not self.negative_kind


@dataclass(frozen=True)
class Reading:
    job: PageJob
    text: TextResult
    extraction: Extraction
    spec: Any  # screening.synth.ReportSpec, or None for a negative


def plan(n_reports: int) -> list[PageJob]:
    """The pages to read for ``n_reports`` report pages: 3/4 normal variants (clean, scan, photo in turn),
    1/4 heavy; plus a text-layer PDF for every sixth report and two negatives for every three reports."""
    jobs = []
    n_heavy = n_reports // 4
    for i in range(n_reports - n_heavy):
        jobs.append(PageJob(SEED_BASE["report"] + i, ("clean", "scan", "photo")[i % 3]))
    jobs += [PageJob(SEED_BASE["heavy"] + i, "heavy") for i in range(n_heavy)]
    jobs += [PageJob(SEED_BASE["pdf"] + i, "pdf") for i in range(max(2, n_reports // 6))]
    n_negative = max(len(NEGATIVE_KINDS) * 2, n_reports * 2 // 3)
    jobs += [
        PageJob(SEED_BASE["negative"] + i, "negative", NEGATIVE_KINDS[i % len(NEGATIVE_KINDS)])
        for i in range(n_negative)
    ]
    return jobs


def _every_fourth(jobs: list[PageJob], start: int) -> set[int]:
    by_kind: dict[str, list[int]] = {}
    for job in jobs:
        by_kind.setdefault(job.negative_kind or job.variant, []).append(job.seed)
    return {seed for seeds in by_kind.values() for i, seed in enumerate(sorted(seeds)) if i % 4 == start}


def held_out_seeds(jobs: list[PageJob]) -> set[int]:
    """One document in four is held out, stratified: within each page kind (variant or negative kind), in
    seed order, the 2nd, 6th, 10th ... The same rule for every task and every run."""
    return _every_fourth(jobs, 1)


def calibration_seeds(jobs: list[PageJob]) -> set[int]:
    """Another one in four, the thresholds are chosen on: within each page kind, the 4th, 8th, 12th ..."""
    return _every_fourth(jobs, 3)


FIXTURE_JOBS: Final = (
    PageJob(FIXTURE_SEED_BASE + 2, "photo"),  # seed 900002 draws a blood count (the tests use its platelets)
    PageJob(FIXTURE_SEED_BASE + 1, "negative", "other_document"),
)
FIXTURE_NAMES: Final = ("lab_report_photo", "other_document")


def write_fixtures(cache: Path, out: Path = FIXTURES) -> list[Path]:
    """Read the fixture pages with the real reader and store each as JSON (job, text, extraction)."""
    written = []
    for name, reading in zip(FIXTURE_NAMES, read_all(list(FIXTURE_JOBS), cache, log=print), strict=True):
        doc = {
            "job": {"seed": reading.job.seed, "variant": reading.job.variant,
                    "negative_kind": reading.job.negative_kind},
            "text": to_json(reading.text),
            "extraction": to_json(reading.extraction),
        }  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        written.append(out / f"{name}.json")
        written[-1].write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    return written


# --- rendering ------------------------------------------------------------------------------------------


def _heavy(data: bytes, seed: int) -> bytes:
    """A harder photo: the ``photo`` variant shrunk again to 90–45 %, blurred 0.5–1.3 px, noise σ 6–14,
    JPEG quality 50–30.

    Severity is drawn uniformly per seed, so the set holds pages from barely harder than ``photo`` to
    unreadable, and legibility labels of both kinds (measured: at 85 % the values still read; at 50 % most
    are lost).
    """
    rng = np.random.default_rng([seed, 7])
    severity = float(rng.uniform(0.0, 1.0))
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    scale = 0.90 - 0.45 * severity
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    image = image.filter(ImageFilter.GaussianBlur(0.5 + 0.8 * severity))
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + rng.standard_normal(pixels.shape).astype(np.float32) * (6 + 8 * severity)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=int(50 - 20 * severity))
    return out.getvalue()


def render_job(job: PageJob) -> tuple[bytes, str, Any]:
    """``(file bytes, kind, spec or None)`` of one planned page."""
    import screening.synth as synth  # local: the report generator needs reportlab, a development dependency

    if not job.is_report:
        image, _ = synth.make_negative(job.seed, job.negative_kind)  # type: ignore[arg-type]
        return _jpeg(image), "jpeg", None
    spec = synth.make_spec(job.seed)
    if job.variant == "pdf":
        return synth.render_pdf(spec), "pdf", spec
    variant: Any = "photo" if job.variant == "heavy" else job.variant
    data, kind = synth.render_bytes(spec, variant)
    if job.variant == "heavy":
        return _heavy(data, job.seed), "jpeg", spec
    return data, "jpeg" if kind in ("jpg", "jpeg") else kind, spec


def _jpeg(image: Image.Image) -> bytes:
    """The upload step re-encodes every image as JPEG; quality 95 adds little to the generator's own JPEG."""
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=95)
    return out.getvalue()


# --- reading (cached) -----------------------------------------------------------------------------------


def read_cached(data: bytes, kind: str, cache: Path) -> TextResult:
    """``read_file(data, kind)``, cached on disk by content hash and reader version."""

    key = hashlib.sha256(data).hexdigest()[:32]
    path = cache / f"text-{text_step.TEXT_VERSION}-{key}.json"
    if path.exists():
        return text_result_from_json(json.loads(path.read_text()))
    try:
        result = text_step.read_file(data, kind)
    except text_step.TextError:
        result = TextResult(pages=(), engine={"error": "unreadable"})
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(result), ensure_ascii=False))
    return result


def read_all(jobs: list[PageJob], cache: Path, *, log: Callable[[str], None]) -> Iterator[Reading]:
    started = time.perf_counter()
    for n, job in enumerate(jobs, 1):
        data, kind, spec = render_job(job)
        text = read_cached(data, kind, cache)
        if n % 10 == 0 or n == len(jobs):
            log(f"  read {n}/{len(jobs)} pages ({time.perf_counter() - started:.0f} s)")
        yield Reading(job=job, text=text, extraction=structure(text), spec=spec)


# --- labels ---------------------------------------------------------------------------------------------


def _same_number(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def field_is_correct(key: str, found: Analyte | Field, spec: Any) -> bool:
    """Whether an extracted field equals the generator's truth (values exactly, with their comparator)."""
    if isinstance(found, Analyte):
        try:
            row = spec.row(found.code)
        except KeyError:
            return False  # a row the report does not print
        return _same_number(found.value, row.value) and found.comparator == row.comparator
    truth = {
        "collected_on": spec.collected_on,
        "reported_on": spec.reported_on,
        "patient_name": spec.patient_name,
        "patient_sex": spec.sex,
        "patient_age": spec.age_years,
    }[key]
    return bool(found.value == truth)


def share_values_read(extraction: Extraction, spec: Any) -> tuple[float, float]:
    """``(found, right)``: the share of the printed result rows the parser found, and the share of those
    whose value was read exactly."""
    rows = spec.rows
    found = [(row, extraction.analyte(row.code)) for row in rows]
    found = [(row, a) for row, a in found if a is not None]
    right = sum(_same_number(a.value, row.value) for row, a in found if a is not None)
    return (len(found) / len(rows) if rows else 0.0), (right / len(found) if found else 0.0)


def is_legible(extraction: Extraction, spec: Any) -> bool:
    """At least half of the printed rows found and 90 % of those read exactly.

    Measured on the rows *found* rather than all printed rows, because the parser misses some rows of some
    layouts even on clean pages: legibility is about the picture, not the parser's coverage.
    """
    found, right = share_values_read(extraction, spec)
    return found >= LEGIBLE_MIN_FOUND and right >= LEGIBLE_MIN_RIGHT


# --- datasets -------------------------------------------------------------------------------------------

# (is_lab_report, is_legible) of each negative kind. An ``unreadable`` upload is a report blurred, darkened
# or shrunk past reading: nothing in it can tell what it is, so it trains only legibility (0), and the
# decision asks for a better picture. Legibility of a blank page or a scene is undefined; another
# document's text is readable.
NEGATIVE_LABELS: Final = {
    "blank": (0, doctype.UNKNOWN),
    "other_document": (0, 1),
    "scene": (0, doctype.UNKNOWN),
    "unreadable": (doctype.UNKNOWN, 0),
}


def doc_rows(readings: list[Reading]) -> LabelledSet:
    X, y, groups = [], [], []
    for r in readings:
        X.append(document_features(r.text, r.extraction))
        if r.job.is_report:
            y.append((1, int(is_legible(r.extraction, r.spec))))
        else:
            y.append(NEGATIVE_LABELS[r.job.negative_kind])
        groups.append(r.job.seed)
    return LabelledSet.build(
        np.array(X), np.array(y), feature_names=DOC_FEATURES, groups=groups, source="ocr"
    )


def _fields_of(extraction: Extraction, text: TextResult, spec: Any) -> dict[str, tuple[Any, int]]:
    stats = page_stats(text)
    out = {}
    for key in field_keys(extraction):
        found = field_value(key, extraction)
        assert found is not None  # noqa: S101 - field_keys lists only present fields
        out[key] = (field_features(key, extraction, stats), int(field_is_correct(key, found, spec)))
    return out


OWN: Final = np.array([not name.startswith("page_") for name in FIELD_FEATURES])


def field_rows(readings: list[Reading], *, log: Callable[[str], None]) -> LabelledSet:
    """Real reader fields of every report page, plus injected corruptions of the normal variants."""
    X: list[Any] = []
    y: list[int] = []
    groups: list[int] = []
    source: list[str] = []
    kinds_count: dict[str, int] = {}
    for r in readings:
        if not r.job.is_report:
            continue
        clean = _fields_of(r.extraction, r.text, r.spec)
        for vector, label in clean.values():
            X.append(vector)
            y.append(label)
            groups.append(r.job.seed)
            source.append("ocr")
        if r.job.variant == "heavy":
            continue
        rng = random.Random(r.job.seed)  # noqa: S311 - reproducible corruptions
        for _ in range(INJECTED_COPIES):
            text, applied = corrupt(r.text, r.spec, rng)
            if not applied:
                continue
            for kind in applied:
                kinds_count[kind] = kinds_count.get(kind, 0) + 1
            corrupted = _fields_of(structure(text), text, r.spec)
            for key, (vector, label) in corrupted.items():
                before = clean.get(key)
                if before is not None and before[1] == label and np.array_equal(before[0][OWN], vector[OWN]):
                    continue  # the field itself is untouched (only page statistics moved): already in the set
                X.append(vector)
                y.append(label)
                groups.append(r.job.seed)
                source.append("injected")
    log(f"  injected corruptions applied: {kinds_count}")
    return LabelledSet.build(
        np.array(X), np.array(y), feature_names=FIELD_FEATURES, groups=groups, source=np.array(source)
    )


def stored_examples(task: str, version: str, jobs: list[PageJob]) -> tuple[LabelledSet, dict[str, str]]:
    """The labelled examples (training and held-out together) stored with a committed version, and the
    reader versions that produced them; refused unless every example comes from a page of ``jobs`` and
    from the generator and reader (no staff labels)."""
    meta = registry.read_meta(task, version)
    sets = registry.load_data(task, version)
    data = sets["train"]
    for name in ("calibration", "test"):
        if name in sets:
            data = data.concat(sets[name])
    seeds = {job.seed for job in jobs}
    if not set(data.groups.tolist()) <= seeds or set(data.source.tolist()) - {"ocr", "injected"}:
        raise SystemExit(f"{task} {version}: its examples are not all from this plan's generated pages")
    reader = meta.get("provenance", {}).get("reader") or {}
    return data, {"text_version": str(reader.get("text_version", "")),
                  "parser_version": str(reader.get("parser_version", ""))}  # fmt: skip


# --- command --------------------------------------------------------------------------------------------


def _describe_data(task: str, jobs: list[PageJob], data: LabelledSet) -> tuple[str, list[str]]:
    counts: dict[str, int] = {}
    for job in jobs:
        name = job.negative_kind or job.variant
        counts[name] = counts.get(name, 0) + 1
    pages = ", ".join(f"{k} {v}" for k, v in counts.items())
    description = (
        f"Generated pages, one document per seed ({pages}), read by the production reader "
        "(`screening.pipeline.text.read_file`: RapidOCR 3.10 PP-OCRv6, line classifier off; pypdf for the "
        "text-layer PDFs) and structured by `screening.pipeline.structure`. Labels come from the "
        "generator's truth. `heavy` pages are photos shrunk again to 90–45 %, blurred, noised and "
        "re-compressed at JPEG quality 50–30. One document seed in four is held out and one in four is the "
        "calibration set the thresholds are chosen on."
    )
    notes = []
    if task == "doctype":
        notes.append(
            f"`is_legible` = at least {LEGIBLE_MIN_FOUND:.0%} of the printed result rows found and "
            f"{LEGIBLE_MIN_RIGHT:.0%} of those values read exactly. Negatives: `other_document` is not a "
            "report and legible; `blank` and `scene` are not reports (legibility undefined); `unreadable` "
            "(a report blurred, darkened or shrunk past reading) is illegible and trains only legibility."
        )
    else:
        counts_src = data.source_counts()
        n_ocr, n_injected = counts_src.get("ocr", 0), counts_src.get("injected", 0)
        total = len(data)
        wrong = data.y == 0
        real_wrong = int((wrong & (data.source == "ocr")).sum())
        injected_wrong = int((wrong & (data.source == "injected")).sum())
        notes += [
            f"{n_ocr} of {total} field examples ({n_ocr / total:.0%}) are real reader output; "
            f"{n_injected} ({n_injected / total:.0%}) come from injected corruptions.",
            f"Of the {int(wrong.sum())} wrong fields, {real_wrong} are real OCR or parsing errors and "
            f"{injected_wrong} were injected.",
            "Injected corruptions (a corrupted segment keeps its score half of the time, else score × "
            "U(0.80, 0.98)): " + "; ".join(f"`{k}`: {v}" for k, v in CORRUPTIONS.items()) + ".",
        ]
    return description, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m screening.ml.train", description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=registry.TASKS)
    parser.add_argument("--version", help="semantic version of the new artefact, e.g. 1.0.0")
    parser.add_argument("--reports", type=int, default=72, help="report pages to generate and read")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="OCR cache directory")
    parser.add_argument("--out", type=Path, default=registry.ARTEFACTS, help="artefact directory")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing version (never a published one)"
    )
    parser.add_argument(
        "--write-fixtures", action="store_true", help="read and write the test fixtures, then stop"
    )
    parser.add_argument(
        "--from-version",
        help="reuse the labelled examples stored with this committed version of the task (no OCR): the "
        "same pages, split again by this code's rules",
    )
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.write_fixtures:
        for path in write_fixtures(args.cache):
            log(f"wrote {path}")
        return 0
    if not args.task or not args.version:
        parser.error("--task and --version are required")

    jobs = plan(args.reports)
    reader = {"text_version": "", "parser_version": ""}
    if args.from_version:
        data, reader = stored_examples(args.task, args.from_version, jobs)
        log(f"{args.task} {args.version}: {len(data)} examples stored with {args.task} {args.from_version}")
    else:
        log(f"{args.task} {args.version}: reading {len(jobs)} pages (cache {args.cache})")
        readings = list(read_all(jobs, args.cache, log=log))
        data = doc_rows(readings) if args.task == "doctype" else field_rows(readings, log=log)
    train_and_calibration, test = split_by_group(data, held_out_seeds(jobs))
    train, calibration = split_by_group(train_and_calibration, calibration_seeds(jobs))
    log(f"  {len(train)} training, {len(calibration)} calibration and {len(test)} held-out examples")
    model: doctype.DocTypeClassifier | fieldconf.FieldConfidence
    if args.task == "doctype":
        model = doctype.fit(train, random_state=RANDOM_STATE)
    else:
        model = fieldconf.fit(train, random_state=RANDOM_STATE)
    metrics, thresholds = evaluate(model, test, calibration)
    metrics["by_page_kind"] = subgroups(
        model, test, {job.seed: job.negative_kind or job.variant for job in jobs}
    )
    description, notes = _describe_data(args.task, jobs, data)
    import screening.synth as synth  # local: the report generator needs reportlab, a development dependency

    if args.from_version:
        notes.append(
            f"The examples are those stored with {args.task} {args.from_version} (the pages as the reader "
            f"{reader['text_version']} and parser {reader['parser_version']} read them), split again into "
            "training, calibration and held-out documents; no page was read again."
        )
    else:
        reader = {"text_version": text_step.TEXT_VERSION, "parser_version": structure_step.PARSER_VERSION}

    meta = registry.save(
        model,
        version=args.version,
        train=train,
        test=test,
        calibration=calibration,
        metrics=metrics,
        thresholds=thresholds,
        data_description=description,
        data_notes=notes,
        provenance={
            "generator": "screening.synth"
            + ("" if hasattr(synth, "make_negative") else " (negatives: train.py)"),
            "seeds": {k: v for k, v in SEED_BASE.items()},
            "n_pages": len(jobs),
            "test_rule": "per page kind, in seed order, every 4th document from the 2nd",
            "calibration_rule": "per page kind, in seed order, every 4th document from the 4th",
            "fixture_seeds": sorted(job.seed for job in FIXTURE_JOBS),
            "reader": reader,
            "command": f"python -m screening.ml.train --task {args.task} --version {args.version} "
            f"--reports {args.reports}"
            + (f" --from-version {args.from_version}" if args.from_version else ""),
        },
        directory=args.out,
        overwrite=args.overwrite,
    )
    log(json.dumps({"task": meta["task"], "version": meta["version"], "thresholds": meta["thresholds"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
