"""Closed-form solutions, steady state and event semantics against independent references."""

import itertools

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from dosing.engine.events import Dose, Reset, build_plan, evaluate_plan
from dosing.engine.pk import modes, steady_state

TWO_CMT = (4.0, [30.0, 40.0], [3.0])
MODELS = {
    1: (5.0, [50.0], []),
    2: TWO_CMT,
    3: (5.72, [16.7, 6.98, 19.5], [15.8, 5.21]),
}


def one(cl, v, q):
    return modes(np.array([cl]), np.array([v], dtype=float), np.array([q], dtype=float).reshape(1, -1))


def ode_reference(cl, v, q, doses, times, change=None):
    """Integrate the compartment ODEs (with an AUC state) piece by piece with scipy's solver."""
    n = len(v)

    def rhs(t, y, cl, v, q, rate):
        a = y[:n]
        c = a / np.asarray(v)
        d = np.zeros(n + 1)
        d[0] = rate - cl * c[0]
        for j in range(1, n):
            flow = q[j - 1] * (c[0] - c[j])
            d[0] -= flow
            d[j] += flow
        d[n] = c[0]
        return d

    def params_at(t):
        if change is not None and t > change[0]:
            return change[1]
        return cl, v, q

    edges = sorted(
        {0.0, *[d.time_h for d in doses], *[d.end_h for d in doses], max(times)}
        | ({change[0]} if change else set())
    )
    y = np.zeros(n + 1)
    out = {}
    for t0, t1 in itertools.pairwise(edges):
        for d in doses:
            if d.duration_h == 0 and d.time_h == t0:
                y[0] += d.amount_mg
        rate = sum(d.amount_mg / d.duration_h for d in doses if d.duration_h > 0 and d.time_h <= t0 < d.end_h)
        p = params_at(t1)
        sol = solve_ivp(rhs, (t0, t1), y, args=(*p, rate), rtol=1e-12, atol=1e-12, dense_output=True)
        for t in times:
            if t0 < t <= t1:
                yt = sol.sol(t)
                out[t] = (yt[0] / p[1][0], yt[n])
        y = sol.y[:, -1].copy()
    return np.array([out[t][0] for t in times]), np.array([out[t][1] for t in times])


@pytest.mark.parametrize("ncmt", [1, 2, 3])
def test_closed_form_matches_scipy_ode_solver_for_mixed_bolus_and_infusions(ncmt):
    cl, v, q = MODELS[ncmt]
    doses = [Dose(0.0, 1000.0, 1.0), Dose(12.0, 750.0, 2.5), Dose(20.0, 500.0, 0.0), Dose(30.0, 1500.0, 1.5)]
    times = np.array([0.5, 1.0, 5.0, 12.0, 13.0, 19.9, 20.5, 24.0, 31.0, 40.0, 48.0])
    conc, cum = evaluate_plan(build_plan(doses, [], times), [one(cl, v, q)])
    ref_c, ref_a = ode_reference(cl, v, q, doses, times)
    np.testing.assert_allclose(conc[0], ref_c, rtol=1e-8)
    np.testing.assert_allclose(cum[0], ref_a, rtol=1e-8)


def test_parameter_change_carries_amounts_and_matches_scipy():
    cl, v, q = TWO_CMT
    later = (2.0, [35.0, 40.0], [3.0])
    doses = [Dose(0.0, 1000.0, 1.0), Dose(12.0, 1000.0, 2.0), Dose(30.0, 1500.0, 1.5)]
    times = np.array([1.0, 12.0, 13.0, 18.0, 19.0, 24.0, 31.0, 48.0])
    plan = build_plan(doses, [], times, change_times_h=[13.0])  # the change falls inside an infusion
    conc, cum = evaluate_plan(plan, [one(cl, v, q), one(*later)])
    ref_c, ref_a = ode_reference(cl, v, q, doses, times, change=(13.0, later))
    np.testing.assert_allclose(conc[0], ref_c, rtol=1e-8)
    np.testing.assert_allclose(cum[0], ref_a, rtol=1e-8)


@pytest.mark.parametrize("ncmt", [1, 2, 3])
@pytest.mark.parametrize(
    ("dose_mg", "infusion_h", "interval_h"), [(1000.0, 1.0, 12.0), (500.0, 0.0, 8.0), (1500.0, 2.0, 36.0)]
)
def test_steady_state_auc_equals_dose_over_clearance(ncmt, dose_mg, infusion_h, interval_h):
    cl, v, q = MODELS[ncmt]
    ss = steady_state(one(cl, v, q), np.array([dose_mg]), np.array([infusion_h]), interval_h)
    assert ss.auc_tau_mg_h_per_l[0] == pytest.approx(dose_mg / cl, rel=1e-10)
    assert ss.auc24_mg_h_per_l[0] == pytest.approx(dose_mg * 24 / interval_h / cl, rel=1e-10)


def test_thomson_typical_steady_state_matches_reference_values():
    # reference section 3: CL 4.5556, AUC24 439.02, trough 10.959, end of infusion 29.977
    cl = 2.99 * (1 + 0.0154 * (100 - 66))
    ss = steady_state(one(cl, [0.675 * 70, 0.732 * 70], [2.28]), np.array([1000.0]), np.array([1.0]), 12.0)
    assert cl == pytest.approx(4.5556, rel=1e-4)
    assert ss.auc24_mg_h_per_l[0] == pytest.approx(439.02, rel=1e-4)
    assert ss.trough_mg_per_l[0] == pytest.approx(10.959, rel=1e-4)
    assert ss.peak_mg_per_l[0] == pytest.approx(29.977, rel=1e-4)


def test_goti_typical_steady_state_matches_reference_values():
    # reference section 3: CL 3.8893, AUC24 514.24, trough 15.747, peak 30.861
    cl = 4.5 * (100 / 120) ** 0.8
    ss = steady_state(one(cl, [58.4, 38.4], [6.5]), np.array([1000.0]), np.array([1.0]), 12.0)
    assert cl == pytest.approx(3.8893, rel=1e-4)
    assert ss.auc24_mg_h_per_l[0] == pytest.approx(514.24, rel=1e-4)
    assert ss.trough_mg_per_l[0] == pytest.approx(15.747, rel=1e-4)
    assert ss.peak_mg_per_l[0] == pytest.approx(30.861, rel=1e-4)


def test_one_compartment_accumulation_follows_the_textbook_factor():
    cl, v, tau = 5.0, 50.0, 8.0
    k = cl / v
    ss = steady_state(one(cl, [v], []), np.array([1000.0]), np.array([0.0]), tau)
    peak_single = 1000.0 / v
    assert ss.peak_mg_per_l[0] == pytest.approx(peak_single / (1 - np.exp(-k * tau)), rel=1e-12)


def test_steady_state_dose_equals_many_repeated_doses():
    m = one(*TWO_CMT)
    repeated = [Dose(-12.0 * k, 1000.0, 1.0) for k in range(1, 400)] + [Dose(0.0, 1000.0, 1.0)]
    times = [0.0, 0.5, 1.0, 6.0, 12.0]
    expected, _ = evaluate_plan(build_plan(repeated, [], times), [m])
    ss = [Dose(0.0, 1000.0, 1.0, ss=1, interval_h=12.0)]
    got, _ = evaluate_plan(build_plan(ss, [], times), [m])
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_continuous_infusion_at_steady_state_sits_at_rate_over_clearance():
    cl = TWO_CMT[0]
    dose = Dose(0.0, 2400.0, 24.0, ss=1, interval_h=0.0)  # 100 mg/h
    conc, cum = evaluate_plan(build_plan([dose], [], [0.0, 5.0, 24.0]), [one(*TWO_CMT)])
    np.testing.assert_allclose(conc[0], 100.0 / cl, rtol=1e-10)
    assert cum[0, 2] - cum[0, 0] == pytest.approx(24 * 100.0 / cl, rel=1e-10)


def test_prediction_at_a_dose_time_is_the_pre_dose_value():
    m = one(*TWO_CMT)
    doses = [Dose(0.0, 1000.0, 1.0), Dose(12.0, 1000.0, 0.0)]
    conc, _ = evaluate_plan(build_plan(doses, [], [12.0, 12.0 + 1e-9]), [m])
    only_first, _ = evaluate_plan(build_plan(doses[:1], [], [12.0]), [m])
    assert conc[0, 0] == pytest.approx(only_first[0, 0], rel=1e-12)
    assert conc[0, 1] > conc[0, 0] + 1000.0 / 30.0 * 0.99


def test_reset_empties_compartments_and_stops_infusions():
    m = one(*TWO_CMT)
    doses = [Dose(0.0, 1000.0, 10.0), Dose(8.0, 500.0, 1.0)]
    conc, _ = evaluate_plan(build_plan(doses, [Reset(5.0)], [5.0, 7.0, 9.0]), [m])
    assert conc[0, 0] > 0  # the observation at the reset sees the state before it
    assert conc[0, 1] == 0.0
    alone, _ = evaluate_plan(build_plan([Dose(8.0, 500.0, 1.0)], [], [9.0]), [m])
    assert conc[0, 2] == pytest.approx(alone[0, 0], rel=1e-12)


def test_steady_state_add_keeps_the_existing_state():
    m = one(*TWO_CMT)
    first = Dose(0.0, 1000.0, 1.0)
    ss_add = Dose(6.0, 500.0, 1.0, ss=2, interval_h=12.0)
    ss_reset = Dose(6.0, 500.0, 1.0, ss=1, interval_h=12.0)
    add, _ = evaluate_plan(build_plan([first, ss_add], [], [10.0]), [m])
    reset, _ = evaluate_plan(build_plan([first, ss_reset], [], [10.0]), [m])
    alone, _ = evaluate_plan(build_plan([first], [], [10.0]), [m])
    assert add[0, 0] == pytest.approx(reset[0, 0] + alone[0, 0], rel=1e-10)


def test_covariates_apply_next_observation_carried_backward():
    fast, slow = one(8.0, [50.0], []), one(2.0, [50.0], [])
    dose = [Dose(0.0, 1000.0, 0.0)]
    # the second parameter set (measured at 10 h) governs (0, 10]; the first set governs nothing after 10 h
    conc, _ = evaluate_plan(build_plan(dose, [], [10.0]), [slow])
    nocb, _ = evaluate_plan(build_plan(dose, [], [10.0], change_times_h=[0.0]), [fast, slow])
    assert nocb[0, 0] == pytest.approx(conc[0, 0], rel=1e-12)
    assert nocb[0, 0] == pytest.approx(20.0 * np.exp(-2.0 / 50.0 * 10.0), rel=1e-12)


def test_steady_state_infusion_longer_than_its_interval_is_refused():
    with pytest.raises(ValueError, match="longer than its interval"):
        build_plan([Dose(0.0, 1000.0, 13.0, ss=1, interval_h=12.0)], [], [1.0])
