"""Labelled feature sets: what a model was trained and evaluated on, with a content hash for provenance.

A ``LabelledSet`` is a feature matrix, its labels, the generator seed (or staff case id) each row came from
and where the label came from (``ocr``: a real reader result compared with the generator's truth;
``injected``: a documented synthetic corruption of reader text; ``staff``: a correction or decision from
the review UI).
It is stored as a plain ``.npz`` (no pickles, loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

SOURCES = ("ocr", "injected", "staff", "synthetic")


@dataclass(frozen=True)
class LabelledSet:
    """Rows of features with labels.

    ``y`` is 1-d (field model: 1 = the field was read correctly) or 2-d with one column per target (document
    model: ``is_lab_report``, ``is_legible``; -1 where a target does not apply). ``groups`` holds the
    generator seed or case id of each row, so a split by group never puts one document on both sides.
    ``source`` is one of ``SOURCES`` per row.
    """

    X: npt.NDArray[np.float64]
    y: npt.NDArray[np.int64]
    groups: npt.NDArray[np.int64]
    source: npt.NDArray[np.str_]
    feature_names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = self.X.shape[0]
        if self.X.ndim != 2 or self.X.shape[1] != len(self.feature_names):
            raise ValueError(f"X must be (n, {len(self.feature_names)}), got {self.X.shape}")
        if self.y.shape[0] != n or self.groups.shape != (n,) or self.source.shape != (n,):
            raise ValueError("X, y, groups and source must have the same number of rows")
        unknown = set(self.source.tolist()) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown sources {sorted(unknown)}")

    @classmethod
    def build(
        cls,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        feature_names: tuple[str, ...],
        groups: npt.ArrayLike | None = None,
        source: str | npt.ArrayLike = "synthetic",
    ) -> LabelledSet:
        """A set from plain arrays; ``groups`` default to 0 and ``source`` may be one string for every row."""
        xa = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
        if xa.ndim == 1:
            xa = xa.reshape(0 if xa.size == 0 else -1, len(feature_names))
        ya = np.ascontiguousarray(np.asarray(y, dtype=np.int64))
        n = xa.shape[0]
        ga = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
        sa = np.full(n, source, dtype="<U16") if isinstance(source, str) else np.asarray(source, dtype="<U16")
        return cls(X=xa, y=ya, groups=ga, source=sa, feature_names=tuple(feature_names))

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def concat(self, other: LabelledSet) -> LabelledSet:
        if other.feature_names != self.feature_names:
            raise ValueError("feature layouts differ")
        return LabelledSet(
            X=np.concatenate([self.X, other.X]),
            y=np.concatenate([self.y, other.y]),
            groups=np.concatenate([self.groups, other.groups]),
            source=np.concatenate([self.source, other.source]),
            feature_names=self.feature_names,
        )

    def subset(self, mask: npt.NDArray[np.bool_]) -> LabelledSet:
        return LabelledSet(
            X=self.X[mask],
            y=self.y[mask],
            groups=self.groups[mask],
            source=self.source[mask],
            feature_names=self.feature_names,
        )

    def sha256(self) -> str:
        """Hash of the feature names, the features, the labels, the seeds and the label sources.

        Arrays are hashed as little-endian float64 / int64 in C order, so the hash does not depend on the
        machine that trained.
        """
        h = hashlib.sha256()
        h.update(json.dumps(list(self.feature_names)).encode())
        h.update(np.ascontiguousarray(self.X, dtype="<f8").tobytes())
        h.update(repr(self.y.shape).encode())
        h.update(np.ascontiguousarray(self.y, dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(self.groups, dtype="<i8").tobytes())
        h.update("\n".join(self.source.tolist()).encode())
        return h.hexdigest()

    def source_counts(self) -> dict[str, int]:
        names, counts = np.unique(self.source, return_counts=True)
        return {str(k): int(v) for k, v in zip(names, counts, strict=True)}


def split_by_group(
    data: LabelledSet, test_groups: set[int] | frozenset[int]
) -> tuple[LabelledSet, LabelledSet]:
    """``(train, test)``: every row whose group is in ``test_groups`` goes to test, never to train."""
    mask = np.isin(data.groups, np.array(sorted(test_groups), dtype=np.int64))
    return data.subset(~mask), data.subset(mask)


def save_sets(path: Path, sets: dict[str, LabelledSet]) -> None:
    """Write named sets (e.g. ``train``, ``test``) into one ``.npz``.

    The file's bytes carry zip timestamps: the provenance hash is ``LabelledSet.sha256()``, not the file's.
    """
    arrays: dict[str, npt.NDArray[np.generic]] = {}
    for name, s in sets.items():
        arrays[f"{name}__X"] = s.X
        arrays[f"{name}__y"] = s.y
        arrays[f"{name}__groups"] = s.groups
        arrays[f"{name}__source"] = s.source
        arrays[f"{name}__features"] = np.array(s.feature_names, dtype="<U64")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    path.write_bytes(buffer.getvalue())


def load_sets(path: Path) -> dict[str, LabelledSet]:
    """Read what ``save_sets`` wrote (no pickles are ever loaded)."""
    with np.load(path, allow_pickle=False) as npz:
        names = sorted({key.split("__")[0] for key in npz.files})
        return {
            name: LabelledSet(
                X=npz[f"{name}__X"],
                y=npz[f"{name}__y"],
                groups=npz[f"{name}__groups"],
                source=npz[f"{name}__source"],
                feature_names=tuple(str(f) for f in npz[f"{name}__features"]),
            )
            for name in names
        }
