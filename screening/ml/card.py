"""The model card written next to each artefact (``<task>-<semver>.md``), from its meta dict."""

from __future__ import annotations

import math
from typing import Any

INTENDED_USE = {
    "doctype": (
        "Scores each uploaded file with `p_lab_report` (is it a laboratory result report) and `p_legible` "
        "(did the reader recover its printed values). The decision step may decline an upload as *not a lab "
        "report* or ask for a better picture only when the score is past the thresholds below, always "
        "with the reason, a re-upload hint and a *request manual review* button."
    ),
    "fieldconf": (
        "Scores each extracted field (analyte values, collection and report dates, patient name, sex, age) "
        "with a calibrated P(correct). The decision step uses a field without staff review only when this "
        "score is at or above `auto_use_at_least` **and** every deterministic validation passes "
        "(plausibility, flag against range, recomputed eGFR, dates, identity). The reader's own score is a "
        "feature here, never a gate on its own."
    ),
}


TASK_LIMITATIONS = {
    "doctype": [
        "* The negatives are four generated kinds (blank, receipt or prescription, scene, unreadable "
        "report); real uploads of other documents (ID cards, imaging reports, discharge letters, app "
        "screenshots) are not in the set, and an imaging or pathology report is *not* a lab report here.",
        "* The held-out set has a few dozen documents: AUROC 1.0 on it says the generated classes separate, "
        "not that real uploads will; the probabilities are moderate (sigmoid calibration on few examples), "
        "so `p_not_report` / `p_unreadable` may rarely be reached until retrained on real uploads.",
    ],
    "fieldconf": [
        "* **Almost every wrong field is injected.** The real reader misreads very few fields of generated "
        "pages (see the data notes and the `real reader output only` row): the operating point's precision "
        "is measured against injected corruptions, and how the model ranks the reader's own rare errors is "
        "essentially untested until staff-labelled real uploads are added.",
        "* P(correct) is calibrated to this set's mix, where most wrong fields are injected and wrong fields "
        "are far more common than the real reader's error rate on generated pages. On real uploads it is "
        "therefore likely to *under*-state P(correct): recalibrate on staff-labelled real fields before "
        "any field is used without review.",
        "* A digit read as another digit that keeps the value plausible, in range and consistent with its "
        "flag is nearly invisible to these features; the deterministic checks (recomputed eGFR, patient "
        "confirmation of the key values) have to catch it.",
    ],
}


def _f(value: Any, digits: int = 3) -> str:
    """A number for the card; an undefined one (NaN in memory, null in the meta file) as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _page_kinds(pages: dict[str, dict[str, Any]]) -> list[str]:
    if not pages:
        return []
    if "share_wrong" in next(iter(pages.values())):
        lines = [
            "",
            "By page kind:",
            "",
            "| page | n | share wrong | AUROC | Brier |",
            "|---|---|---|---|---|",
        ]
        return lines + [
            f"| {g} | {v['n']} | {v['share_wrong']:.3f} | {_f(v['auroc'])} | {_f(v['brier'], 4)} |"
            for g, v in pages.items()
        ]
    lines = ["", "By page kind (held-out documents):", ""]
    lines += ["| page | n | p_lab_report mean (min–max) | p_legible mean (min) |", "|---|---|---|---|"]
    return [
        *lines,
        *(
            f"| {g} | {v['n']} | {v['p_lab_report_mean']:.3f} ({v['p_lab_report_min']:.3f}–"
            f"{v['p_lab_report_max']:.3f}) | {v['p_legible_mean']:.3f} ({v['p_legible_min']:.3f}) |"
            for g, v in pages.items()
        ),
        "",
    ]


def _op(op: dict[str, Any]) -> str:
    return (
        f"coverage {op['coverage']:.1%}, precision {op['precision']:.4f} (one-sided 95 % lower bound "
        f"{op['precision_low']:.4f}), {op['n_wrong']} wrong of {op['n_auto']}"
    )


def _metric_block(title: str, m: dict[str, Any], chosen_on: str) -> list[str]:
    low, high = m["auroc_ci95"]
    op = m["operating_point"]
    where = (
        "threshold chosen on the calibration set, measured here"
        if chosen_on == "calibration"
        else "threshold chosen on this same held-out set: its best case"
    )
    lines = [
        f"### {title}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| held-out examples | {m['n']} (positives {m['prevalence']:.1%}) |",
        f"| AUROC (95 % bootstrap CI) | {_f(m['auroc'])} ({_f(low)}–{_f(high)}) |",
        f"| Brier score | {_f(m['brier'], 4)} |",
        f"| ECE, 10 equal-width bins | {_f(m['ece_10'], 4)} |",
        f"| calibration slope / intercept (logit) | {_f(m['calibration_slope'], 2)} / "
        f"{_f(m['calibration_intercept'], 2)} |",
        f"| operating point `p ≥ {_f(op['threshold'], 4)}` ({where}) | {_op(op)} |",
    ]
    chosen = m.get("calibration_operating_point")
    if chosen:
        lines.append(f"| the same threshold on the calibration set (where it was chosen) | {_op(chosen)} |")
    real = m.get("real_reader")
    if real:
        lines.append(
            f"| real reader output only (source `ocr`) | {real['n']} fields, {real['n_wrong']} wrong; at the "
            f"threshold: {_op(real['operating_point'])} |"
        )
    negative = m.get("negative_operating_point")
    if negative:
        lines.append(
            f"| negative call `p ≤ {_f(negative['threshold_on_p'], 4)}` | "
            f"coverage {negative['coverage']:.1%}, precision {negative['precision']:.4f} "
            f"(lower bound {negative['precision_low']:.4f}), "
            f"{negative['n_wrong']} wrong of {negative['n_auto']} |"
        )
    if "reader_score_auroc" in m:
        lines.append(f"| AUROC of the reader's score alone | {_f(m['reader_score_auroc'])} |")
    lines += ["", "Reliability (predicted against observed, held-out set):", ""]
    lines += ["| bin | n | mean predicted | observed |", "|---|---|---|---|"]
    lines += [
        f"| {b['low']:.1f}–{b['high']:.1f} | {b['n']} | {b['mean_predicted']:.3f} | {b['observed']:.3f} |"
        for b in m["reliability"]
    ]
    if "by_page_kind" in m:
        lines += _page_kinds(m["by_page_kind"])
    for name, key in (("field kind", "by_kind"), ("label source", "by_source")):
        if key in m:
            lines += [
                "",
                f"By {name}:",
                "",
                "| group | n | share wrong | AUROC | Brier |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| {g} | {v['n']} | {v['share_wrong']:.3f} | {_f(v['auroc'])} | {_f(v['brier'], 4)} |"
                for g, v in m[key].items()
            ]
    return [*lines, ""]


def model_card(meta: dict[str, Any]) -> str:
    """Markdown model card for one artefact."""
    task = meta["task"]
    data = meta["data"]
    lines = [
        f"# Model card: `{task}` {meta['version']}",
        "",
        f"Artefact `{meta['artefact_file']}` (SHA-256 `{meta['artefact_sha256']}`), created "
        f"{meta['created_at']} with scikit-learn {meta['sklearn_version']}. Training-data hash "
        f"`{meta['training_data_sha256']}`.",
        "",
        "## Intended use",
        "",
        INTENDED_USE[task],
        "",
        "**Shadow mode first.** A new version starts as `shadow` in the `ScreeningModelVersion` table: its "
        "would-be decisions are logged while every upload still goes to staff review. It may gate anything "
        "only after validation on **200–500 real, de-identified uploads** labelled by staff, with the "
        "precision targets met on them (lower confidence bound), and a named clinician's sign-off.",
        "",
        "## Model",
        "",
        meta["model_description"],
        "",
        f"Features ({len(meta['feature_names'])}, in this order): "
        + ", ".join(f"`{n}`" for n in meta["feature_names"])
        + ". Definitions: `screening/ml/features.py`.",
        "",
        "## Data",
        "",
        data["description"],
        "",
        f"* training examples: {meta['n_train']}; "
        + (
            f"calibration examples (thresholds are chosen on these): {meta['n_calibration']}; "
            if "n_calibration" in meta
            else ""
        )
        + f"held-out examples: {meta['n_test']} (split by generator seed: no document appears in two sets)",
        f"* label sources (training): {data['train_sources']}; "
        + (f"(calibration): {data['calibration_sources']}; " if "calibration_sources" in data else "")
        + f"(held-out): {data['test_sources']}",
    ]
    if "n_calibration" not in meta:
        lines.append(
            "* No calibration set: this version's thresholds were chosen on the held-out set its metrics "
            "are reported on (superseded from 1.2.0, which chooses on a separate calibration set)."
        )
    lines += [f"* {note}" for note in data.get("notes", [])]
    lines += ["", "## Held-out metrics", ""]
    m = meta["metrics"]
    if task == "doctype":
        chosen_on = m.get("threshold_chosen_on", "held_out")
        lines += _metric_block("Is a lab report", m["is_lab_report"], chosen_on)
        lines += _metric_block(
            "Is legible (reports, other documents, unreadable pictures)", m["is_legible"], chosen_on
        )
        lines += _page_kinds(m.get("by_page_kind", {}))
    else:
        lines += _metric_block("Field read correctly", m, m.get("threshold_chosen_on", "held_out"))
    lines += ["## Thresholds", "", "| name | value |", "|---|---|"]
    lines += [f"| `{k}` | {_f(v, 4)} |" for k, v in meta["thresholds"].items()]
    lines += [
        "",
        "## Limitations",
        "",
        "* **Synthetic data only.** Every example comes from generated reports and generated non-report "
        "images, read by the real OCR pipeline. Real uploads include thermal and dot-matrix prints, stamps "
        "over values, glare, folds, handwriting, multi-page reports and app screenshots that the generator "
        "does not make.",
        "* The held-out set is small: a threshold that makes no error on it can still be wrong at a rate the "
        "lower confidence bound above allows.",
        "* Injected corruptions imitate failure modes measured on other engines (merged flag arrows, lost "
        "decimal points, digit confusions); their frequency in this set is chosen, not measured.",
        *TASK_LIMITATIONS[task],
        "* It does not detect forged or edited reports.",
        "* The pickle is bound to the scikit-learn version above; the registry refuses an artefact whose "
        "SHA-256 differs from this card's meta file.",
        "",
        "## Retraining",
        "",
        "`registry.retrain_version()` (or `retrain()` in `screening/ml/" + task + ".py`) adds "
        "staff-labelled examples (source `staff`) to the stored synthetic training set, chooses its "
        "thresholds on the stored calibration set and measures it on the stored held-out set, which "
        "chooses nothing (reused by every retraining, it stays a fair report only while nobody picks a "
        "version *because* of its held-out figures); the new version gets a new training-data hash and a "
        "new card, and goes to `shadow` first. `tests/screening/test_ml.py` recomputes every committed "
        "version's metrics and thresholds from its artefact and stored sets. "
        "Train on reviewed *and* randomly audited auto-decided cases, never only on "
        "cases the previous model sent to review.",
        "",
    ]
    return "\n".join(lines)
