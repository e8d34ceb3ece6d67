"""Writes of the screening app, by sub-domain; import from here."""

from screening.services import notify
from screening.services.cases import (
    CasePlan,
    answers_clean,
    case_confirm,
    case_hold_lapsed,
    case_open,
    case_plan,
    case_plan_unanswered,
    case_review_request,
    questionnaire_items,
)
from screening.services.pipeline import case_decide, extraction_from_json, next_status, upload_extract
from screening.services.review import case_staff_read_record, review_decide
from screening.services.upload import (
    clean_filename,
    keep_originals,
    max_uploads_per_booking,
    pipeline_enqueue,
    upload_accept,
    upload_staff_read_record,
)

__all__ = [
    "CasePlan",
    "answers_clean",
    "case_confirm",
    "case_decide",
    "case_hold_lapsed",
    "case_open",
    "case_plan",
    "case_plan_unanswered",
    "case_review_request",
    "case_staff_read_record",
    "clean_filename",
    "extraction_from_json",
    "keep_originals",
    "max_uploads_per_booking",
    "next_status",
    "notify",
    "pipeline_enqueue",
    "questionnaire_items",
    "review_decide",
    "upload_accept",
    "upload_extract",
    "upload_staff_read_record",
]
