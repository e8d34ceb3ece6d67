"""Batch simulations for pharmacists: PTA over virtual patients and external evaluation on a cohort.

The numbers come from the pure engine (``dosing.engine.simulate``); this package stores jobs and their
chunks, runs the chunks on Celery workers, and serves the pages and the API.
"""
