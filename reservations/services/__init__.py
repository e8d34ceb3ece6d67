"""Writes of the reservations app, by sub-domain; import from here."""

from reservations.services import reconciliation, refunds
from reservations.services.booking import (
    booking_cancel,
    booking_reschedule,
    hold_create,
    slot_known_full,
)
from reservations.services.demo import demo_departments_seed
from reservations.services.idempotency import Answer, idempotent
from reservations.services.money import from_fen, money, to_fen
from reservations.services.noshow import no_show_check, no_show_waive
from reservations.services.payments import (
    PaymentStart,
    desk_code_payment_url,
    desk_payment_record,
    holds_expire_due,
    payment_close,
    payment_notification_receive,
    payment_start,
    payments_reconcile_day,
    payments_reconcile_unknown,
    refund_process,
)
from reservations.services.queue import (
    check_in_window,
    queue_call_next,
    queue_flag,
    queue_move,
    queue_rule_for,
)
from reservations.services.selfcheckin import poster_token, self_check_in
from reservations.services.staff import booking_check_in, session_names_reveal, session_stop, slot_extra_add
from reservations.services.waitlist import (
    waitlist_join,
    waitlist_leave,
    waitlist_offer_next,
    waitlists_close_due,
)
from reservations.services.walkin import WalkIn, walk_in_sell

__all__ = [
    "Answer",
    "PaymentStart",
    "WalkIn",
    "booking_cancel",
    "booking_check_in",
    "booking_reschedule",
    "check_in_window",
    "demo_departments_seed",
    "desk_code_payment_url",
    "desk_payment_record",
    "from_fen",
    "hold_create",
    "holds_expire_due",
    "idempotent",
    "money",
    "no_show_check",
    "no_show_waive",
    "payment_close",
    "payment_notification_receive",
    "payment_start",
    "payments_reconcile_day",
    "payments_reconcile_unknown",
    "poster_token",
    "queue_call_next",
    "queue_flag",
    "queue_move",
    "queue_rule_for",
    "reconciliation",
    "refund_process",
    "refunds",
    "self_check_in",
    "session_names_reveal",
    "session_stop",
    "slot_extra_add",
    "slot_known_full",
    "to_fen",
    "waitlist_join",
    "waitlist_leave",
    "waitlist_offer_next",
    "waitlists_close_due",
    "walk_in_sell",
]
