"""Reads of the batch simulations: a job is seen by the pharmacist who created it, 404 for anyone else."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from dosing.batch.models import BatchJob
from medcard import roles
from medcard.models import User
from medcard.selectors import user_has_role


def batch_jobs_for_user(*, user: User) -> QuerySet[BatchJob]:
    """The pharmacist's own jobs, newest first (nothing for anyone who is not a pharmacist)."""
    if not user_has_role(user=user, role=roles.PHARMACIST):
        return BatchJob.objects.none()
    return BatchJob.objects.filter(created_by=user).defer("input_csv", "spec")


def batch_job_get(*, user: User, job_id: int) -> BatchJob:
    """One job of the pharmacist's; ``Http404`` for anyone else's job, and for anyone not a pharmacist."""
    try:
        return batch_jobs_for_user(user=user).defer(None).get(pk=job_id)
    except BatchJob.DoesNotExist:
        raise Http404("No such job.") from None
