"""The platform's core: what every app may import and that imports no app.

``core.errors`` (the one application error and its catalogue of refusals), ``core.api`` (the API's error
format and exception handler) and ``core.clock`` (the hospital's time zone and "today"). No models, no
views: the layering rule is in docs/architecture.md and enforced by tests/test_architecture.py.
"""
