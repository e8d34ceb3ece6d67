"""Dosing histories as NONMEM understands them, and their exact evaluation.

Rules (the ones PsN ``proseval`` output needs, see the reference section 0.5):

1. A dose contributes only strictly after its start: a prediction at a dose time is the pre-dose value.
2. Covariates are piecewise constant and carried backward (NOCB): a covariate measured at time ``c_k`` applies
   on ``(c_(k-1), c_k]``; after the last measurement the last value holds. This equals NONMEM with an EVID=2
   record at every measurement time. Compartment amounts are continuous where parameters change.
3. A reset empties every compartment and stops running infusions. A steady-state dose ``ss=1`` resets, puts
   the system at the steady state of the regimen (amount, duration, ``interval_h``; ``interval_h=0`` means a
   continuous infusion at ``amount/duration`` mg/h running for ever), then gives the dose itself. ``ss=2``
   adds the steady state to the current state without a reset. An observation at the time of a steady-state
   dose sees the steady-state trough; one at the time of a plain reset sees the state before the reset.

The history is cut into segments of constant parameters; each segment is solved in closed form by
superposition (:func:`dosing.engine.pk.respond`) and hands its compartment amounts to the next.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dosing.engine.pk import Modes, respond, steady_state_predose

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Dose:
    """An intravenous dose.

    Attributes
    ----------
    time_h : float
        Start of the dose.
    amount_mg : float
        Amount given.
    duration_h : float
        Infusion duration; 0 for a bolus.
    ss : int
        0 for an ordinary dose, 1 for steady state after a reset, 2 for steady state added to the state.
    interval_h : float
        Dosing interval of the steady-state regimen (``ss`` only); 0 for a continuous infusion.
    """

    time_h: float
    amount_mg: float
    duration_h: float = 0.0
    ss: int = 0
    interval_h: float = 0.0

    @property
    def end_h(self) -> float:
        """End of the infusion (the start for a bolus)."""
        return self.time_h + self.duration_h


@dataclass(frozen=True)
class Observation:
    """A measured concentration (mg/L) at ``time_h``."""

    time_h: float
    conc_mg_per_l: float


@dataclass(frozen=True)
class Reset:
    """Empty every compartment and stop infusions at ``time_h`` (NONMEM EVID=3)."""

    time_h: float


@dataclass(frozen=True)
class _Segment:
    start_h: float
    end_h: float
    param_index: int
    init: str  # "zero", "carry", "ss", "ss_add"
    ss_dose: Dose | None
    dose_start_h: FloatArray
    dose_duration_h: FloatArray
    dose_amount_mg: FloatArray
    query_index: NDArray[np.intp]  # which of the plan's query times this segment answers
    times_h: FloatArray  # query times, then the end time if finite


@dataclass(frozen=True)
class Plan:
    """A dosing history compiled against a fixed set of query times."""

    segments: tuple[_Segment, ...]
    times_h: FloatArray
    n_param_sets: int


def build_plan(
    doses: Sequence[Dose],
    resets: Sequence[Reset],
    times_h: Sequence[float] | FloatArray,
    change_times_h: Sequence[float] = (),
) -> Plan:
    """Compile a history for evaluation at ``times_h``.

    Parameters
    ----------
    doses, resets : sequences
        The history, in any order.
    times_h : array_like
        Times at which concentrations and cumulative areas are wanted.
    change_times_h : sequence of float
        Sorted times ``c_1 < ... < c_(m-1)`` where the parameters change: parameter set ``k`` governs
        ``(c_k, c_(k+1)]`` (NOCB), so ``m`` parameter sets are expected at evaluation.

    Returns
    -------
    Plan

    Examples
    --------
    Two 1000 mg infusions over 1 h, 12 h apart, one-compartment CL 5 L/h and V 50 L; a level at 12 h is the
    pre-dose trough, and the area over the first 24 h is the dose over CL less what is left to eliminate:

    >>> import numpy as np
    >>> from dosing.engine.pk import modes
    >>> m = modes(np.array([5.0]), np.array([[50.0]]), np.empty((1, 0)))
    >>> plan = build_plan([Dose(0.0, 1000.0, 1.0), Dose(12.0, 1000.0, 1.0)], [], [12.0, 24.0])
    >>> conc, cum = evaluate_plan(plan, [m])
    >>> [round(float(c), 3) for c in conc[0]]
    [6.335, 8.244]
    >>> round(float(cum[0, 1]), 6) == round(2000 / 5 - float(conc[0, 1]) * 50 / 5, 6)
    True
    """
    times = np.asarray(times_h, dtype=float)
    changes = sorted(float(c) for c in change_times_h)
    for dose in doses:
        if dose.ss and dose.interval_h > 0 and dose.duration_h > dose.interval_h:
            raise ValueError(
                f"steady-state dose at {dose.time_h} h: infusion of {dose.duration_h} h is longer than its "
                f"interval of {dose.interval_h} h"
            )
        if dose.ss and dose.interval_h == 0 and dose.duration_h <= 0:
            raise ValueError(f"steady-state continuous infusion at {dose.time_h} h needs a duration")
    all_times = [d.time_h for d in doses] + [r.time_h for r in resets] + list(times) + changes
    first = min(all_times) if all_times else 0.0
    reset_times = {r.time_h for r in resets}
    ss_by_time: dict[float, Dose] = {}
    for dose in doses:
        if dose.ss:
            if dose.time_h in ss_by_time:
                raise ValueError(f"two steady-state doses at {dose.time_h} h")
            ss_by_time[dose.time_h] = dose
    edge_times = sorted({first, *changes, *reset_times, *ss_by_time})
    edges: list[tuple[float, str, Dose | None]] = []
    for t in edge_times:
        ss_dose = ss_by_time.get(t)
        emptied = t in reset_times or t == first
        if ss_dose is not None:
            init = "ss" if ss_dose.ss == 1 or emptied else "ss_add"
        else:
            init = "zero" if emptied else "carry"
        edges.append((t, init, ss_dose))
    plain = sorted(doses, key=lambda d: d.time_h)
    segments: list[_Segment] = []
    assigned = np.full(times.shape, -1, dtype=np.intp)
    running: list[Dose] = []  # infusions still running at the start of the segment
    for idx, (start, init, ss_dose) in enumerate(edges):
        end = edges[idx + 1][0] if idx + 1 < len(edges) else math.inf
        if init in ("zero", "ss"):
            running = []
        param_index = sum(1 for c in changes if c < end) if math.isfinite(end) else len(changes)
        param_index = min(param_index, len(changes))
        seg_doses = [
            Dose(start, d.amount_mg * (d.end_h - start) / d.duration_h, d.end_h - start) for d in running
        ]
        seg_doses += [d for d in plain if start <= d.time_h < end]
        running = [d for d in seg_doses if d.duration_h > 0 and d.end_h > end]
        include_start = init in ("ss", "ss_add") or idx == 0
        mask = (times > start) & (times <= end)
        if include_start:
            mask |= times == start
        assigned[mask] = idx
        segments.append(
            _Segment(
                start_h=start,
                end_h=end,
                param_index=param_index,
                init=init,
                ss_dose=ss_dose,
                dose_start_h=np.array([d.time_h for d in seg_doses], dtype=float),
                dose_duration_h=np.array([d.duration_h for d in seg_doses], dtype=float),
                dose_amount_mg=np.array([d.amount_mg for d in seg_doses], dtype=float),
                query_index=np.empty(0, dtype=np.intp),
                times_h=np.empty(0),
            )
        )
    final: list[_Segment] = []
    for idx, seg in enumerate(segments):
        query = np.flatnonzero(assigned == idx)
        seg_times = times[query]
        if math.isfinite(seg.end_h):
            seg_times = np.append(seg_times, seg.end_h)
        final.append(
            _Segment(
                seg.start_h,
                seg.end_h,
                seg.param_index,
                seg.init,
                seg.ss_dose,
                seg.dose_start_h,
                seg.dose_duration_h,
                seg.dose_amount_mg,
                query,
                seg_times,
            )
        )
    return Plan(segments=tuple(final), times_h=times, n_param_sets=len(changes) + 1)


def evaluate_plan(plan: Plan, modes_by_set: Sequence[Modes]) -> tuple[FloatArray, FloatArray]:
    """Concentrations and cumulative areas at the plan's query times.

    Parameters
    ----------
    plan : Plan
    modes_by_set : sequence of Modes
        One batch decomposition per parameter set, all with the same batch size B.

    Returns
    -------
    conc_mg_per_l, cum_auc_mg_h_per_l : ndarray, shape (B, Q)
        The cumulative area runs from the first event of the history.
    """
    batch = modes_by_set[0].mu_per_h.shape[0]
    n_q = plan.times_h.shape[0]
    conc = np.zeros((batch, n_q))
    cum = np.zeros((batch, n_q))
    amounts_end: FloatArray | None = None
    cum_start = np.zeros(batch)
    for seg in plan.segments:
        m = modes_by_set[seg.param_index]
        z0: FloatArray | None = None
        if seg.init in ("carry", "ss_add") and amounts_end is not None:
            z0 = m.from_amounts_mg(amounts_end)
        if seg.init in ("ss", "ss_add") and seg.ss_dose is not None:
            d = seg.ss_dose
            z_ss = steady_state_predose(m, np.array([d.amount_mg]), np.array([d.duration_h]), d.interval_h)
            z0 = z_ss if z0 is None else z0 + z_ss
        if seg.times_h.size == 0:
            continue
        c, a, z = respond(
            m, z0, seg.start_h, seg.dose_start_h, seg.dose_duration_h, seg.dose_amount_mg, seg.times_h
        )
        k = seg.query_index.size
        conc[:, seg.query_index] = c[:, :k]
        cum[:, seg.query_index] = cum_start[:, None] + a[:, :k]
        if math.isfinite(seg.end_h):
            amounts_end = m.to_amounts_mg(z[:, -1, :])
            cum_start = cum_start + a[:, -1]
    return conc, cum
