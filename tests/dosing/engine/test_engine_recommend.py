"""Recommendations: targets, practical constraints, loading doses, next-dose timing, renal failure."""

import numpy as np
import pytest

from dosing.engine.estimation import Dose, Observation, Subject, fit_map
from dosing.engine.forecast import Component, forecast
from dosing.engine.models import load_model
from dosing.engine.recommend import DosingRules, Target, recommend


def component(model_id, patient, doses=(), levels=()):
    model = load_model(model_id)
    env = model.covariate_env(patient)
    subject = Subject(model, (env,), (), tuple(doses), (), tuple(levels))
    return Component(subject, fit_map(subject))


ADULT = {"WT": 80, "AGE": 55, "MALE": 1, "SCR": 1.0, "HT": 178}


def test_a_priori_regimen_lands_in_the_default_auc_target_with_practical_doses():
    rec = recommend([component("thomson_2009", ADULT)], weight_kg=80, now_h=0.0)
    m = rec.maintenance
    assert rec.success and rec.status == "ok"
    assert 400 <= m.auc24_mg_h_per_l <= 600
    assert m.dose_mg % 250 == 0
    assert m.interval_h in (6, 8, 12, 24, 36, 48)
    assert m.dose_mg / m.infusion_h <= 1000
    assert 0 <= m.pta <= 1


def test_a_priori_loading_dose_is_weight_based_and_capped():
    rec = recommend([component("thomson_2009", ADULT)], weight_kg=80, now_h=0.0)
    assert rec.loading_dose_mg == 2000  # 25 mg/kg x 80 kg
    assert rec.loading_infusion_h == 2.0
    assert rec.next_dose_time_h == rec.maintenance.interval_h
    heavy = dict(ADULT, WT=160)
    rec = recommend([component("thomson_2009", heavy)], weight_kg=160, now_h=0.0)
    assert rec.loading_dose_mg == 3000


def test_infusions_are_never_faster_than_one_gram_per_hour():
    rules = DosingRules()
    np.testing.assert_array_equal(
        rules.infusion_h(np.array([250, 1000, 1250, 1750, 2000])), [1, 1, 1.5, 2, 2]
    )


def test_maximum_single_and_daily_doses_are_respected():
    rules = DosingRules(max_single_dose_mg=1500, max_daily_dose_mg=3000)
    young = {"WT": 90, "AGE": 20, "MALE": 1, "SCR": 0.5, "HT": 185}
    rec = recommend([component("goti_2018", young)], weight_kg=90, now_h=0.0, rules=rules)
    for r in (rec.maintenance, *rec.alternatives):
        assert r.dose_mg <= 1500 and r.daily_dose_mg <= 3000


def test_target_not_reachable_within_limits_is_a_status():
    rules = DosingRules(max_single_dose_mg=250, max_daily_dose_mg=1000)
    rec = recommend([component("thomson_2009", ADULT)], weight_kg=80, now_h=0.0, rules=rules)
    assert not rec.success and rec.status == "target_not_reachable"


def test_auc_plus_trough_target_constrains_the_trough():
    target = Target.chinese_guideline()
    rec = recommend([component("goti_2018", ADULT)], weight_kg=80, now_h=0.0, target=target)
    assert rec.success
    m = rec.maintenance
    assert 400 <= m.auc24_mg_h_per_l <= 650 and 10 <= m.trough_mg_per_l <= 15


def test_a_posteriori_recommendation_follows_the_measured_clearance():
    doses = [Dose(12.0 * k, 1000.0, 1.0) for k in range(4)]
    fast = component("thomson_2009", ADULT, doses, [Observation(35.5, 5.0), Observation(37.5, 20.0)])
    slow = component("thomson_2009", ADULT, doses, [Observation(35.5, 25.0), Observation(37.5, 40.0)])
    rf = recommend([fast], weight_kg=80, now_h=38.0)
    rs = recommend([slow], weight_kg=80, now_h=38.0)
    assert rf.maintenance.daily_dose_mg > rs.maintenance.daily_dose_mg
    assert rf.loading_dose_mg is None and rs.loading_dose_mg is None
    assert rs.next_dose_time_h >= 48.0  # not before the regimen's interval after the last dose


def test_next_dose_waits_for_the_level_to_fall_to_the_new_regimens_trough():
    doses = [Dose(12.0 * k, 1500.0, 1.5) for k in range(4)]
    comp = component("thomson_2009", ADULT, doses, [Observation(35.5, 35.0), Observation(38.0, 55.0)])
    rec = recommend([comp], weight_kg=80, now_h=38.0)
    level = forecast([comp], [rec.next_dose_time_h]).conc_mg_per_l[0]
    assert rec.next_dose_time_h > 48.0
    assert level <= rec.maintenance.trough_mg_per_l * 1.05 + 1e-6
    assert rec.wait_until_below_mg_per_l == pytest.approx(rec.maintenance.trough_mg_per_l * 1.05)
    assert "wait until the level falls below" in rec.message


def test_renal_failure_gets_a_wait_until_below_answer():
    patient = {"WT": 70, "AGE": 70, "MALE": 1, "SCR": 9.0, "DIAL": 1}
    levels = [
        Observation(24.0, 40.0),
        Observation(48.0, 39.0),
        Observation(72.0, 38.0),
        Observation(96.0, 37.0),
    ]
    comp = component("goti_2018", patient, [Dose(0.0, 2000.0, 2.0)], levels)
    assert comp.fit.parameters["CL"] < 0.25
    # with the pharmacy's intervals up to 24 h, even 250 mg daily overshoots an AUC24 of 600
    rec = recommend([comp], weight_kg=70, now_h=96.0, rules=DosingRules(intervals_h=(8.0, 12.0, 24.0)))
    assert rec.strategy == "redose_by_level" and rec.success
    assert rec.wait_until_below_mg_per_l == 15.0
    assert rec.next_dose_time_h > 96.0
    level = forecast([comp], [rec.next_dose_time_h]).conc_mg_per_l[0]
    assert level == pytest.approx(15.0, abs=0.01)
    assert rec.redose_mg % 250 == 0


def test_current_regimen_on_target_is_kept():
    doses = [Dose(12.0 * k, 1000.0, 1.0) for k in range(4)]
    comp = component("thomson_2009", ADULT, doses, [Observation(35.5, 11.0), Observation(37.5, 29.0)])
    rec = recommend([comp], weight_kg=80, now_h=38.0, current=(1000.0, 1.0, 12.0))
    assert rec.message.startswith("continue the current regimen")
    assert (rec.maintenance.dose_mg, rec.maintenance.interval_h) == (1000.0, 12.0)


def test_children_get_finer_dose_rounding():
    child = {"WT": 18, "AGE": 5, "SCR": 0.35}
    rec = recommend([component("le_2014", child)], weight_kg=18, now_h=0.0)
    assert rec.success and rec.maintenance.dose_mg % 5 == 0 and rec.maintenance.dose_mg < 1000
    assert rec.loading_dose_mg is None


def test_model_averaged_recommendation_weights_models_by_fit():
    doses = [Dose(12.0 * k, 1000.0, 1.0) for k in range(4)]
    levels = [Observation(35.5, 12.0), Observation(37.5, 30.0)]
    comps = [component(m, ADULT, doses, levels) for m in ("thomson_2009", "goti_2018")]
    from dosing.engine.forecast import model_weights

    w = model_weights([c.fit.ofv for c in comps])
    weighted = [Component(c.subject, c.fit, float(wi)) for c, wi in zip(comps, w, strict=True)]
    rec = recommend(weighted, weight_kg=80, now_h=38.0)
    singles = [recommend([c], weight_kg=80, now_h=38.0) for c in comps]
    assert rec.success
    lo = min(s.maintenance.auc24_mg_h_per_l / s.maintenance.daily_dose_mg for s in singles)
    hi = max(s.maintenance.auc24_mg_h_per_l / s.maintenance.daily_dose_mg for s in singles)
    assert lo - 1e-9 <= rec.maintenance.auc24_mg_h_per_l / rec.maintenance.daily_dose_mg <= hi + 1e-9


def test_forecast_auc_window_matches_steady_state_identity_after_many_doses():
    doses = [Dose(12.0 * k, 1000.0, 1.0) for k in range(60)]
    comp = component("thomson_2009", ADULT, doses)
    fc = forecast([comp], [700.0], auc_windows_h=[(696.0, 720.0)], n_samples=100)
    cl = comp.fit.parameters["CL"]
    assert fc.auc_mg_h_per_l[0] == pytest.approx(2000.0 / cl, rel=1e-4)
    assert fc.auc_lower_mg_h_per_l[0] < fc.auc_mg_h_per_l[0] < fc.auc_upper_mg_h_per_l[0]


def test_invalid_targets_are_refused():
    with pytest.raises(ValueError, match="low < high"):
        Target(auc24_low=600, auc24_high=400)
    with pytest.raises(ValueError, match="trough"):
        Target(kind="auc24_trough")


def test_trough_target_with_slow_elimination_doses_by_level_below_the_trough_ceiling():
    patient = {"WT": 80, "AGE": 80, "MALE": 1, "SCR": 4.5}
    doses = [Dose(0.0, 1000.0, 1.0), Dose(24.0, 1000.0, 1.0)]
    comp = component("goti_2018", patient, doses, [Observation(47.5, 30.0)])
    rec = recommend([comp], weight_kg=80, now_h=48.0, target=Target.chinese_guideline())
    assert rec.strategy == "redose_by_level"
    assert rec.wait_until_below_mg_per_l == 15.0


def test_trough_target_with_fast_elimination_gives_the_closest_regimen_and_says_so():
    patient = {"WT": 70, "AGE": 25, "MALE": 1, "SCR": 0.5}
    target = Target("auc24_trough", 400.0, 600.0, 14.0, 15.0)
    rec = recommend([component("zhao_2021", patient)], weight_kg=70, now_h=0.0, target=target)
    assert not rec.success and rec.status == "trough_not_reachable"
    assert 400 <= rec.maintenance.auc24_mg_h_per_l <= 600
    assert rec.maintenance.trough_mg_per_l < 14.0
    assert "closest" in rec.message
