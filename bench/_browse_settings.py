"""The production settings with one more URL, ``/bench/trivial/``: the browse-storm benchmark's baseline (the
whole middleware stack, no work)."""

from hospital.settings import *  # noqa: F403

ROOT_URLCONF = "bench._browse_urls"
