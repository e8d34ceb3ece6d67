"""Batch jobs: chunks stored once and counted once, in any order, and the result equals one process's."""

from __future__ import annotations

import copy

import pytest
from django.db import IntegrityError

from dosing.batch import services
from dosing.batch.models import BatchChunk, BatchJob
from dosing.engine import simulate
from medcard.models import User
from tests.dosing.batch.conftest import COHORT_CSV, SMALL_PTA

pytestmark = pytest.mark.django_db


def _job(user: User, spec: dict | None = None, **kwargs) -> BatchJob:  # type: ignore[type-arg]
    return services.batch_job_create(
        user=user, kind=kwargs.pop("kind", "pta"), title="t", spec=copy.deepcopy(spec or SMALL_PTA), **kwargs
    )


def test_job_is_stored_with_its_inputs_and_chunk_count(pharmacist: User) -> None:
    job = _job(pharmacist)
    assert (job.status, job.n_chunks, job.chunks_done, job.model_id) == ("queued", 3, 0, "thomson_2009")
    assert job.spec == SMALL_PTA and job.engine_version.startswith("sha256:")


def test_chunks_in_any_order_give_the_single_process_result(pharmacist: User) -> None:
    job = _job(pharmacist)
    for index in (2, 0, 1):
        assert services.batch_chunk_store(job_id=job.pk, index=index)
        finished = services.batch_job_finish(job_id=job.pk)
        assert finished == (index == 1)
    job.refresh_from_db()
    assert job.status == "done" and job.chunks_done == 3
    assert job.result == simulate.pta_run(simulate.pta_spec(SMALL_PTA))


def test_a_chunk_delivered_twice_is_stored_and_counted_once(pharmacist: User) -> None:
    job = _job(pharmacist)
    assert services.batch_chunk_store(job_id=job.pk, index=0)
    assert not services.batch_chunk_store(job_id=job.pk, index=0)
    job.refresh_from_db()
    assert job.chunks_done == 1 and BatchChunk.objects.filter(job=job).count() == 1


def test_two_deliveries_racing_past_the_check_store_one_row(
    pharmacist: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both deliveries computed the chunk before either stored it: the unique (job, index) row decides.
    job = _job(pharmacist)
    services.batch_chunk_store(job_id=job.pk, index=1)
    real_filter = BatchChunk.objects.filter

    class Blind:
        def exists(self) -> bool:
            return False

    monkeypatch.setattr(
        BatchChunk.objects, "filter", lambda **kw: Blind() if "index" in kw else real_filter(**kw)
    )
    assert services.batch_chunk_store(job_id=job.pk, index=1) is False
    job.refresh_from_db()
    assert job.chunks_done == 1


def test_the_database_refuses_a_second_row_for_a_chunk(pharmacist: User) -> None:
    job = _job(pharmacist)
    services.batch_chunk_store(job_id=job.pk, index=0)
    chunk = BatchChunk.objects.get(job=job, index=0)
    with pytest.raises(IntegrityError):
        BatchChunk.objects.create(job=job, index=0, result=chunk.result, computed_at=chunk.computed_at)


def test_a_finished_job_is_finished_once(pharmacist: User) -> None:
    job = _job(pharmacist)
    for index in range(job.n_chunks):
        services.batch_chunk_store(job_id=job.pk, index=index)
    assert services.batch_job_finish(job_id=job.pk) is True
    assert services.batch_job_finish(job_id=job.pk) is False
    assert services.batch_chunk_store(job_id=job.pk, index=0) is False


def test_invalid_inputs_store_nothing(pharmacist: User) -> None:
    bad = copy.deepcopy(SMALL_PTA)
    bad["regimens"] = [{"dose_mg": 1000.0, "interval_h": 12.0, "infusion_h": 13.0}]
    with pytest.raises(simulate.SimulationInputError, match="longer than its interval"):
        _job(pharmacist, bad)
    assert not BatchJob.objects.exists()


def test_evaluation_job_equals_the_single_process_evaluation(pharmacist: User) -> None:
    job = _job(pharmacist, {"model": "goti_2018", "chunk_size": 1}, kind="evaluation", input_csv=COHORT_CSV)
    assert job.n_chunks == 3 and "cohort_csv" not in job.spec
    for index in (1, 2, 0):
        services.batch_chunk_store(job_id=job.pk, index=index)
        services.batch_job_finish(job_id=job.pk)
    job.refresh_from_db()
    expected = simulate.evaluation_run(
        simulate.evaluation_spec({"model": "goti_2018", "chunk_size": 1, "cohort_csv": COHORT_CSV})
    )
    assert job.status == "done" and job.result == expected
    assert (
        job.result["metrics"]["population_all"]["n"] == 6 and job.result["metrics"]["bayesian_all"]["n"] == 3
    )


def test_a_chunk_that_raises_marks_the_job_failed(pharmacist: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from dosing.batch import tasks

    job = _job(pharmacist)

    def boom(spec: object, index: int) -> dict:  # type: ignore[type-arg]
        raise RuntimeError("bug")

    monkeypatch.setattr(simulate, "pta_chunk", boom)
    with pytest.raises(RuntimeError):
        tasks.batch_chunk.apply(args=[job.pk, 0], throw=True)
    job.refresh_from_db()
    assert job.status == "failed" and "RuntimeError: bug" in job.error
