"""Demo data of screening: the committed models registered (in shadow), contrast CT screened live."""

from __future__ import annotations

from django.db import transaction

from screening.models import ScreeningExamSetting, ScreeningModelVersion
from screening.services.registry import models_sync

# Contrast CT decides clear cases automatically in the demo, so a trainee sees every outcome; the other
# screened exams keep the default (shadow: staff decide, the pipeline's would-be decision is logged).
DEMO_LIVE_EXAMS = ("ct_contrast",)


@transaction.atomic
def demo_screening_seed() -> tuple[int, int]:
    """Register the committed model artefacts and switch the demo's live exams on. Idempotent.

    Returns the number of registered model versions and of exams set to live.
    """
    models_sync()
    for exam in DEMO_LIVE_EXAMS:
        ScreeningExamSetting.objects.update_or_create(
            exam_code=exam, defaults={"mode": ScreeningExamSetting.Mode.LIVE}
        )
    return ScreeningModelVersion.objects.count(), len(DEMO_LIVE_EXAMS)
