"""Vancomycin MAP-Bayesian dose engine: numpy and scipy only, no Django.

The public entry points:

- :func:`load_model`, :func:`available_models`, :func:`model_from_dict`: the published model library and
  inline models;
- :class:`Dose`, :class:`Observation`, :class:`Reset`, :class:`Subject`: a patient's history against a model;
- :func:`fit_map`: MAP estimation, returning a :class:`MapResult` with ``success`` and ``status``;
- :class:`Component`, :func:`forecast`, :func:`model_weights`: forecasts and model averaging;
- :func:`recommend` with :class:`Target` and :class:`DosingRules`: dose recommendations;
- :func:`population_steady_state`: steady-state exposure of virtual populations;
- :func:`run_case`: the JSON case behind ``python -m dosing.engine CASE.json``.
"""

from dosing.engine.case import CaseError, run_case
from dosing.engine.estimation import MapResult, Subject, fit_map
from dosing.engine.events import Dose, Observation, Reset
from dosing.engine.forecast import Component, Forecast, forecast, model_weights
from dosing.engine.models import ModelError, PopulationModel, available_models, load_model, model_from_dict
from dosing.engine.population import population_steady_state
from dosing.engine.recommend import DosingRules, Recommendation, Regimen, Target, recommend

__all__ = [
    "CaseError",
    "Component",
    "Dose",
    "DosingRules",
    "Forecast",
    "MapResult",
    "ModelError",
    "Observation",
    "PopulationModel",
    "Recommendation",
    "Regimen",
    "Reset",
    "Subject",
    "Target",
    "available_models",
    "fit_map",
    "forecast",
    "load_model",
    "model_from_dict",
    "model_weights",
    "population_steady_state",
    "recommend",
    "run_case",
]
