"""Vancomycin MAP-Bayesian dose engine (numpy and scipy only)."""
