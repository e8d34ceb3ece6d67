"""The screening pipeline's two scikit-learn scoring models, their features, metrics and artefact registry.

* ``features``: fixed-order numeric features of a document (``TextResult`` + ``Extraction``) and of one field.
* ``doctype``: is this a lab report, is it legible (calibrated probabilities).
* ``fieldconf``: calibrated P(the extracted field is correct).
* ``metrics``: AUROC with bootstrap CI, Brier, ECE, reliability table, calibration slope, operating points.
* ``registry``: ``<task>-<semver>.joblib`` + ``.json`` meta + ``.md`` model card, loaded only after the
  artefact's SHA-256 matches its meta; ``score_document`` / ``score_fields`` for the decision step.
* ``train``: the command line that generates data, trains, evaluates and writes artefacts.

No Django imports anywhere in this package: a test imports it in a fresh interpreter and checks.
"""
