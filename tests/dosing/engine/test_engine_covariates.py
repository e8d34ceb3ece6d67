"""Renal and body-size equations against the worked examples of the reference (section 4.3)."""

import pytest

from dosing.engine import covariates as cov
from dosing.engine.models import RenalRule


@pytest.mark.parametrize(
    ("age", "wt", "scr", "female", "expected"),
    [
        (60, 70, 1.0, False, 77.78),
        (60, 70, 1.0, True, 66.11),
        (40, 80, 1.0, False, 111.11),
        (75, 60, 0.8, False, 67.71),
    ],
)
def test_cockcroft_gault_reproduces_reference_examples(age, wt, scr, female, expected):
    got = cov.cockcroft_gault_ml_per_min(age_years=age, weight_kg=wt, scr_mg_dl=scr, female=female)
    assert round(got, 2) == expected


def test_cockcroft_gault_accepts_creatinine_in_micromoles_through_explicit_conversion():
    scr = cov.scr_to_mg_dl(88.4, "umol/L")
    got = cov.cockcroft_gault_ml_per_min(age_years=60, weight_kg=70, scr_mg_dl=scr, female=False)
    assert got == pytest.approx(77.78, abs=0.005)


def test_creatinine_without_a_known_unit_is_refused():
    with pytest.raises(ValueError, match="unknown creatinine unit"):
        cov.scr_to_mg_dl(1.0, "mg/L")


def test_goti_rule_floors_creatinine_in_the_elderly_and_caps_clearance():
    rule = RenalRule(weight="total", cap_ml_per_min=150, scr_floor_mg_dl=1.0, scr_floor_age_over_years=65)
    elderly = {"AGE": 75, "WT": 60, "SCR": 0.8, "MALE": 1}
    assert round(rule.crcl_ml_per_min(elderly), 2) == 54.17
    young = {"AGE": 20, "WT": 120, "SCR": 0.5, "MALE": 1}
    assert rule.crcl_ml_per_min(young) == 150


def test_cockcroft_gault_weight_variants_use_ideal_adjusted_and_fat_free_mass():
    env = {"AGE": 40, "WT": 120, "SCR": 1.0, "MALE": 1, "HT": 175}
    ideal = RenalRule(weight="ideal").crcl_ml_per_min(env)
    adjusted = RenalRule(weight="adjusted").crcl_ml_per_min(env)
    dosing = RenalRule(weight="dosing").crcl_ml_per_min(env)
    assert ideal == pytest.approx(100 * 70.4646 / 72, rel=1e-4)
    assert adjusted == pytest.approx(100 * 90.2787 / 72, rel=1e-4)
    assert dosing == adjusted  # 120 kg is above 120 % of ideal weight
    ffm = RenalRule(weight="ffm").crcl_ml_per_min(env)
    assert ffm == pytest.approx(100 * cov.fat_free_mass_kg(weight_kg=120, height_cm=175, female=False) / 72)


@pytest.mark.parametrize(
    ("age", "scr", "female", "expected"),
    [
        (60, 1.0, False, 86.16),
        (60, 1.0, True, 64.50),
        (40, 0.7, True, 112.05),
        (70, 2.0, False, 35.24),
        (50, 0.6, False, 117.60),
    ],
)
def test_ckd_epi_2021_reproduces_reference_examples(age, scr, female, expected):
    assert (
        round(cov.ckd_epi_2021_ml_per_min_1_73m2(age_years=age, scr_mg_dl=scr, female=female), 2) == expected
    )


@pytest.mark.parametrize(("height", "scr", "expected"), [(120, 0.5, 99.12), (80, 0.3, 110.13)])
def test_bedside_schwartz_reproduces_reference_examples(height, scr, expected):
    assert round(cov.schwartz_bedside_ml_per_min_1_73m2(height_cm=height, scr_mg_dl=scr), 2) == expected


def test_body_size_descriptors_reproduce_reference_examples():
    assert round(cov.ideal_body_weight_kg(height_cm=175, female=False), 2) == 70.46
    assert round(cov.ideal_body_weight_kg(height_cm=160, female=True), 2) == 52.38
    assert round(cov.adjusted_body_weight_kg(weight_kg=120, height_cm=175, female=False), 2) == 90.28
    assert round(cov.bsa_dubois_m2(weight_kg=70, height_cm=175), 4) == 1.8481
    assert round(cov.bsa_mosteller_m2(weight_kg=70, height_cm=175), 4) == 1.8447


def test_fat_free_mass_follows_janmahasatian_for_both_sexes():
    bmi = 70 / 1.75**2
    assert cov.fat_free_mass_kg(weight_kg=70, height_cm=175, female=False) == pytest.approx(
        9270 * 70 / (6680 + 216 * bmi)
    )
    assert cov.fat_free_mass_kg(weight_kg=70, height_cm=175, female=True) == pytest.approx(
        9270 * 70 / (8780 + 244 * bmi)
    )


def test_postmenstrual_age_adds_postnatal_days_to_gestational_weeks():
    assert cov.postmenstrual_age_weeks(gestational_age_weeks=28, postnatal_age_days=21) == 31.0
