"""Fixtures of the batch simulation tests: pharmacists' clients and small jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from hospital.celery import app as celery_app
from medcard import roles
from medcard.models import User
from tests import factories

SMALL_PTA = {
    "model": "thomson_2009",
    "population": "adult_general",
    "n_patients": 1200,
    "chunk_size": 500,
    "seed": 3,
    "regimens": [
        {"dose_mg": 1000.0, "interval_h": 12.0, "infusion_h": 1.0},
        {"dose_mg": 1500.0, "interval_h": 24.0, "infusion_h": 1.5},
    ],
}

COHORT_CSV = """patient_id,event,time_h,amount_mg,duration_h,conc_mg_per_l,age_years,sex,weight_kg,scr_mg_dl
P1,dose,0,1000,1,,64,male,82,1.1
P1,dose,12,1000,1,,,,,
P1,dose,24,1000,1,,,,,
P1,level,23.5,,,11.2,,,,
P1,level,25.5,,,30.1,,,,
P1,level,35.5,,,13.0,,,,
P2,dose,0,750,1,,71,female,58,1.4
P2,dose,12,750,1,,,,,
P2,level,11.5,,,12.5,,,,
P2,level,23.5,,,17.9,,,,
P3,dose,0,1250,1.5,,45,male,95,0.8
P3,level,11.5,,,6.1,,,,
"""


def client_for(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")  # the site's default language is Chinese
    client.force_login(user)
    return client


@pytest.fixture
def pharmacist_client(pharmacist: User) -> Client:
    return client_for(pharmacist)


@pytest.fixture
def other_pharmacist(db: None) -> User:
    return factories.staff(role=roles.PHARMACIST, username="pharm2")


@pytest.fixture
def eager(django_capture_on_commit_callbacks: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """Run the chunk tasks inline when the job's transaction commits (test_batch_worker runs real ones)."""
    saved = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    try:
        yield lambda: django_capture_on_commit_callbacks(execute=True)
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = saved
