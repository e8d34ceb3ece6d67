"""Patient pages: hold, pay, view and cancel numbers, join the waitlist. They work without JavaScript."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import AppError
from core.qr import qr_svg
from medcard import selectors as medcard_selectors
from medcard.models import User
from medcard.views import patient_required
from reservations import discovery, gates, schedules, selectors, services
from reservations.models import Booking, Session, Slot
from reservations.payments.base import GatewayError
from reservations.payments.keys import wechatpay_config
from reservations.payments.wechatpay import oauth as wechat_oauth
from reservations.services.payments import (
    PaymentCheck,
    payment_return_check,
    wechat_openid_get,
    wechat_openid_record,
)
from reservations.templatetags.fees import fee


def _choices(request: HttpRequest) -> list[medcard_selectors.AccountPatient]:
    rows = medcard_selectors.patients_for_account(account=request.user)  # type: ignore[arg-type]
    return [row for row in rows if row.card is not None]


@patient_required
@require_http_methods(["GET", "POST"])
def hold(request: HttpRequest) -> HttpResponse:
    """Choose which of my patients, then hold the number (POST with ``slot_id`` and ``patient_id``)."""
    slot = (
        Slot.objects.select_related("session__department", "session__doctor", "session__clinic_type")
        .filter(pk=request.POST.get("slot_id") or request.GET.get("slot_id") or 0)
        .first()
    )
    if slot is None:  # no slice chosen (or it is gone): back to choosing one, not a dead end
        messages.info(request, _("Choose a time to book first."))
        return redirect("reservations:departments")
    patients = _choices(request)
    # A gated session (a screened exam) asks the questions its gate needs; the answers go with the hold.
    questionnaire = selectors.hold_questions(
        session=slot.session, data=request.POST if request.method == "POST" else None
    )
    context: dict[str, Any] = {
        "slot": slot,
        "session": slot.session,
        "patients": patients,
        "questionnaire": questionnaire,
    }
    patient_id = request.POST.get("patient_id")
    if request.method == "POST" and patient_id:
        if questionnaire is not None and not questionnaire.is_valid():
            context["chosen"] = int(patient_id) if patient_id.isdigit() else None
            return render(request, "reservations/hold.html", context, status=400)
        answers = questionnaire.answers() if questionnaire is not None else None
        try:
            booking = services.hold_create(
                account=request.user,  # type: ignore[arg-type]
                patient_id=int(patient_id),
                slot_id=slot.pk,
                answers=answers,
            )
        except AppError as exc:
            context.update(refusal=exc, chosen=int(patient_id))
            return render(request, "reservations/hold.html", context, status=409)
        except ValueError:
            raise Http404 from None
        if booking.gate:  # the gate's next step, e.g. sending the test results
            return redirect(gates.gate_get(booking.gate).next_url(booking=booking))
        return redirect("reservations:booking-detail", booking_id=booking.pk)
    return render(request, "reservations/hold.html", context)


@patient_required
@require_http_methods(["GET", "POST"])
def waitlist_join(request: HttpRequest, session_id: int) -> HttpResponse:
    """Choose which of my patients waits (GET), then join the full session's waitlist (POST)."""
    session = (
        Session.objects.select_related("department", "doctor", "clinic_type").filter(pk=session_id).first()
    )
    if session is None:
        raise Http404
    if request.method == "GET":
        context = {"session": session, "patients": _choices(request)}
        return render(request, "reservations/waitlist_join.html", context)
    try:
        entry = services.waitlist_join(
            account=request.user,  # type: ignore[arg-type]
            patient_id=int(request.POST.get("patient_id") or 0),
            session_id=session_id,
        )
    except AppError as exc:
        messages.error(request, exc.message)
        return redirect("reservations:bookings")
    position = selectors.waitlist_position(entry=entry)
    text = _("You are number %(n)d on the waitlist. We will message you when a number is free.")
    messages.success(request, text % {"n": position})
    return redirect("reservations:bookings")


@patient_required
@require_http_methods(["GET", "POST"])
def waitlist_leave(request: HttpRequest, entry_id: int) -> HttpResponse:
    """Ask to confirm (GET), then leave the waitlist (POST): a plain form, so it works without JavaScript."""
    account = cast(User, request.user)
    entry = selectors.waitlist_entry_for_account(account=account, entry_id=entry_id)
    if request.method == "GET":
        return render(request, "reservations/waitlist_leave.html", {"entry": entry})
    services.waitlist_leave(account=account, entry_id=entry.pk)
    messages.success(request, _("You have left the waitlist."))
    return redirect("reservations:bookings")


@patient_required
@require_GET
def booking_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    bookings = list(selectors.bookings_for_account(account=request.user))  # type: ignore[arg-type]
    upcoming = [b for b in bookings if b.slot.ends_at >= now and b.status in ("held", "booked", "checked_in")]
    past = [b for b in bookings if b not in upcoming]
    suspensions = selectors.suspensions_for_account(account=request.user, today=timezone.localdate(now))  # type: ignore[arg-type]
    context = {
        "upcoming": upcoming[::-1],
        "past": past,
        "suspensions": suspensions,
        "waiting": selectors.waitlist_entries_for_account(account=request.user),  # type: ignore[arg-type]
    }
    return render(request, "reservations/booking_list.html", context)


@patient_required
@never_cache
@require_GET
def booking_detail(request: HttpRequest, booking_id: int) -> HttpResponse:
    account = cast(User, request.user)
    booking = selectors.booking_for_account(account=account, booking_id=booking_id)
    check = ""
    returned = bool(request.GET.get("checking"))
    if booking.status == Booking.Status.HELD:
        # Back from the cashier (``?checking=1``): until the notification (or our query to the gateway)
        # settles it, say so rather than show "awaiting payment" with the pay buttons (#11). Opened another
        # way with an order open: ask the gateway at once, so a paid number never offers a second payment.
        check = payment_return_check(account=account, booking_id=booking.pk, returned=returned)
        booking.refresh_from_db()
    context: dict[str, Any] = {
        "booking": booking,
        "payment": selectors.booking_payment(booking=booking),
        "refund_status": selectors.booking_refund_status(booking=booking),
        "refund_kind": selectors.booking_refund_kind(booking=booking),
        "checking": returned and check == PaymentCheck.CHECKING,
        "not_paid_after_return": returned and check == PaymentCheck.NOT_PAID,
        "status_url": reverse("reservations:booking-payment-status", kwargs={"booking_id": booking.pk}),
        "receipt_payment": selectors.booking_receipt_payment(booking=booking),
        **_cancellation(booking),
    }
    if booking.status in (Booking.Status.BOOKED, Booking.Status.CHECKED_IN):
        card = booking.patient.cards.filter(status="active").values_list("number", flat=True).first() or ""
        voucher = f"BK:{booking.pk}:{card}"
        context["voucher_svg"] = qr_svg(voucher, label=_("QR code of the appointment voucher"))
    context["in_wechat"] = _in_wechat(request)
    if booking.status == Booking.Status.HELD and booking.hold_expires_at:
        context["seconds_left"] = max(0, int((booking.hold_expires_at - timezone.now()).total_seconds()))
    return render(request, "reservations/booking_detail.html", context)


@patient_required
@require_POST
def booking_pay(request: HttpRequest, booking_id: int) -> HttpResponse:
    try:
        started = services.payment_start(
            account=request.user,  # type: ignore[arg-type]
            booking_id=booking_id,
            channel=request.POST.get("channel", ""),
        )
    except AppError as exc:
        messages.error(request, exc.message)
        return redirect("reservations:booking-detail", booking_id=booking_id)
    return redirect(started.pay_url)


def _cancellation(booking: Booking) -> dict[str, Any]:
    """What the patient may do about cancelling, said before paying and on the booking (#11): a held number
    can always be given back; a paid one online only until the deadline (same-day bookings: already past),
    otherwise at the front desk."""
    rule = schedules.booking_rule_for(department=booking.department)
    deadline = schedules.cancel_deadline(session=booking.session, rule=rule)
    online = timezone.now() <= deadline
    can_cancel = booking.status == Booking.Status.HELD or (booking.status == Booking.Status.BOOKED and online)
    return {
        "cancel_deadline": deadline,
        "cancel_online_after_paying": online,
        "can_cancel": can_cancel,
        "desk_phone": settings.OUTPATIENT_DESK_PHONE,
    }


@patient_required
@never_cache
@require_GET
def booking_payment_status(request: HttpRequest, booking_id: int) -> JsonResponse:
    """What the "checking your payment" page polls: ``booked``, ``checking``, ``not_paid`` or ``not_held``."""
    state = payment_return_check(account=cast(User, request.user), booking_id=booking_id)
    return JsonResponse({"state": state})


@patient_required
@never_cache
@require_http_methods(["GET", "POST"])
def booking_cancel(request: HttpRequest, booking_id: int) -> HttpResponse:
    """GET: the confirmation page, saying what cancelling will do; POST: cancel."""
    if request.method == "GET":
        booking = selectors.booking_for_account(account=cast(User, request.user), booking_id=booking_id)
        context = {"booking": booking, "payment": selectors.booking_payment(booking=booking)}
        context.update(_cancellation(booking))
        return render(request, "reservations/booking_cancel.html", context)
    try:
        booking = services.booking_cancel(account=request.user, booking_id=booking_id, reason="patient")  # type: ignore[arg-type]
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        if selectors.booking_refund_status(booking=booking):
            text = _("Cancelled. The fee of %(fee)s is being refunded to where you paid it.")
            messages.success(request, text % {"fee": fee(booking.fee)})
        else:
            messages.success(request, _("Cancelled."))
    return redirect("reservations:booking-detail", booking_id=booking_id)


@patient_required
@require_http_methods(["GET", "POST"])
def booking_reschedule(request: HttpRequest, booking_id: int) -> HttpResponse:
    """Choose another slice of the same doctor and fee (GET), then move the number to it (POST)."""
    account = cast(User, request.user)
    booking = selectors.booking_for_account(account=account, booking_id=booking_id)
    context: dict[str, Any] = {
        "booking": booking,
        "slots": discovery.reschedule_slots(booking=booking, now=timezone.now()),
    }
    if request.method == "POST":
        try:
            moved = services.booking_reschedule(  # the number moves to a new booking; the old one is closed
                account=account, booking_id=booking.pk, new_slot_id=int(request.POST.get("slot_id") or 0)
            )
        except AppError as exc:
            context["refusal"] = exc
            return render(request, "reservations/reschedule.html", context, status=409)
        messages.success(request, _("Your appointment has been moved to the new time."))
        return redirect("reservations:booking-detail", booking_id=moved.pk)
    return render(request, "reservations/reschedule.html", context)


# --- WeChat Pay inside WeChat's own browser (JSAPI) -------------------------------------------------------


def _in_wechat(request: HttpRequest) -> bool:
    """WeChat's in-app browser, where H5 pay is refused and JSAPI is the way to pay."""
    return "MicroMessenger" in request.headers.get("User-Agent", "")


@patient_required
@never_cache
@require_GET
def booking_wechat_pay(request: HttpRequest, booking_id: int) -> HttpResponse:
    """Pay a held number inside WeChat: learn the openid once (OAuth), then hand the JSAPI parameters to
    the WeChat bridge; after paying (``?checking=1``) wait for the notification to book the number."""
    account = cast(User, request.user)
    booking = selectors.booking_for_account(account=account, booking_id=booking_id)
    detail = reverse("reservations:booking-detail", kwargs={"booking_id": booking.pk})
    if booking.status != Booking.Status.HELD:
        return redirect(detail)
    checking_url = (
        reverse("reservations:booking-wechat-pay", kwargs={"booking_id": booking.pk}) + "?checking=1"
    )
    if request.GET.get("checking"):
        if payment_return_check(account=account, booking_id=booking.pk) != PaymentCheck.CHECKING:
            return redirect(detail + "?checking=1")  # settled (or not paid after all): the appointment says
        return render(
            request,
            "reservations/wechat_pay.html",
            {"booking": booking, "checking": True, "detail_url": detail, "checking_url": checking_url},
        )
    appid = wechatpay_config().appid
    if not wechat_openid_get(account=account, appid=appid):
        state = wechat_oauth.state_issue(account_id=account.pk, booking_id=booking.pk)
        callback = settings.PUBLIC_BASE_URL + reverse("reservations:wechat-oauth-callback")
        return redirect(wechat_oauth.authorize_url(appid=appid, redirect_uri=callback, state=state))
    try:
        started = services.payment_start(
            account=account,
            booking_id=booking.pk,
            channel="wechatpay",
            jsapi=True,
        )
    except AppError as exc:
        messages.error(request, exc.message)
        return redirect(detail)
    context = {
        "booking": booking,
        "checking": False,
        "jsapi_params": started.jsapi_params,
        "detail_url": detail,
        "checking_url": checking_url,
        "sandbox_pay_url": (
            settings.PUBLIC_BASE_URL + reverse("sandbox_gateway:wechat-jsapi-pay")
            if settings.PAYMENT_SANDBOX
            else ""
        ),
        "return_url": settings.PUBLIC_BASE_URL + checking_url,
    }
    return render(request, "reservations/wechat_pay.html", context)


@patient_required
@never_cache
@require_GET
def wechat_oauth_callback(request: HttpRequest) -> HttpResponse:
    """WeChat comes back with ``code`` and our ``state``: keep the openid, go on to pay."""
    account = cast(User, request.user)
    try:
        booking_id = wechat_oauth.state_consume(state=request.GET.get("state", ""), account_id=account.pk)
        openid = wechat_oauth.code_exchange(appid=wechatpay_config().appid, code=request.GET.get("code", ""))
    except AppError as refusal:
        return render(request, "reservations/wechat_pay.html", {"oauth_error": refusal.message}, status=400)
    except GatewayError:
        message = _("WeChat is busy. Please go back to your appointment and try again.")
        return render(request, "reservations/wechat_pay.html", {"oauth_error": message}, status=503)
    wechat_openid_record(account=account, appid=wechatpay_config().appid, openid=openid)
    return redirect("reservations:booking-wechat-pay", booking_id=booking_id)
