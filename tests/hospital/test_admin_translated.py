"""The admin in Chinese: every changelist, add form and change form, walked as a superuser, names every app,
model, field and column in Chinese; staff are greeted by their display name."""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone, translation

from medcard import roles
from medcard.models import AuditEvent, User
from reservations.models import (
    Booking,
    BookingRule,
    NoShowWaiver,
    Payment,
    QueueRule,
    ReconciliationReport,
    Refund,
    WaitlistEntry,
    WeeklyTemplate,
)
from screening.models import ScreeningExamSetting
from tests import factories

CJK = re.compile(r"[\u4e00-\u9fff]")
# Technical words that stay as they are in Chinese too.
TECHNICAL = re.compile(r"\b(API|SHA-256|AUC24|OCR|HTTP|CSV|ID|IP|appid|openid|mg|h|L|kg|cm|px|ms)\b")
ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")
GLUED_PLURAL = re.compile(r"[\u4e00-\u9fff\uff09]s\b")


def untranslated(label: str) -> bool:
    """A label still in English (ASCII words left once technical terms are removed), or a Chinese name with
    Django's English plural "s" glued to it ("审核模型版本s")."""
    if GLUED_PLURAL.search(label):
        return True
    return bool(ENGLISH_WORD.search(TECHNICAL.sub("", label)))


def test_the_checker_catches_what_the_issue_reported() -> None:
    assert untranslated("审核模型版本s")
    assert untranslated("MEDICAL CARD")
    assert untranslated("Masked name")
    assert not untranslated("API 密钥")
    assert not untranslated("AUC24（mg·h/L）")
    assert not untranslated("就诊卡")


class Labels(HTMLParser):
    """The label texts of an admin page: form labels, column headers, headings, app and model names in the
    index tables and the breadcrumbs' links (not the data: result rows and object names are left out)."""

    LABEL_TAGS = frozenset({"label", "h1", "h2", "h3", "caption"})

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[str] = []
        self._stack: list[tuple[str, bool]] = []
        self._thead = 0
        self._breadcrumbs = 0
        self._model_rows = 0
        self._text: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "thead":
            self._thead += 1
        if tag == "div" and "breadcrumbs" in classes:
            self._breadcrumbs += 1
        if tag == "th" and attributes.get("scope") == "row" and "model-" in " ".join(self._classes()):
            self._model_rows += 1
        capture = (
            tag in self.LABEL_TAGS
            or (tag == "th" and (self._thead or attributes.get("scope") == "row"))
            or (tag == "a" and self._breadcrumbs)
        )
        if tag in {"input", "br", "img", "meta", "link", "hr"}:
            return
        self._stack.append((tag, capture, classes))  # type: ignore[arg-type]
        if capture:
            self._text.append([])

    def _classes(self) -> list[str]:
        return [c for _tag, _cap, classes in self._stack for c in classes]  # type: ignore[misc]

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._thead -= 1
        while self._stack:
            open_tag, capture, classes = self._stack.pop()  # type: ignore[misc]
            if capture:
                text = " ".join("".join(self._text.pop()).split()).strip(" :：*")
                if text:
                    self.labels.append(text)
            if open_tag == "div" and "breadcrumbs" in classes:
                self._breadcrumbs -= 1
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for chunk in self._text:
            chunk.append(data)


def labels_of(html: str) -> list[str]:
    parser = Labels()
    parser.feed(html)
    return parser.labels


@pytest.fixture
def admin_data(db: None) -> None:
    """A row of every registered model, so every changelist has rows and every change form opens."""
    account = factories.patient_account(mobile="13911112222", name="赵敏")
    patient = factories.verified_patient_of(account)
    session = factories.clinic_session(capacity=4, fee="50.00", days_ahead=1)
    slot = session.slots.get()
    booking = Booking.objects.create(
        patient=patient, account=account, session=session, slot=slot, department=session.department,
        visit_date=session.date, status="booked", fee=Decimal("50.00"),
    )  # fmt: skip
    payment = Payment.objects.create(
        booking=booking, channel="wechatpay", order_no="WX1", amount=Decimal("50.00"), status="paid"
    )
    Refund.objects.create(
        payment=payment, refund_no="RF1", amount=Decimal("50.00"), reason="test", status="failed"
    )
    missed = Booking.objects.create(
        patient=patient, account=account, session=factories.clinic_session(days_ahead=2), slot=slot,
        department=session.department, visit_date=session.date, status="no_show", fee=Decimal("50.00"),
    )  # fmt: skip
    staff = factories.staff(role=roles.FRONT_DESK, username="desk9")
    NoShowWaiver.objects.create(booking=missed, staff=staff, reason="病假证明")
    WaitlistEntry.objects.create(session=session, patient=patient, account=account)
    BookingRule.objects.create(department=None)
    QueueRule.objects.create(department=None)
    WeeklyTemplate.objects.create(
        department=session.department, doctor=session.doctor, clinic_type=session.clinic_type, weekday=1,
        half_day="am", start_time=time(8), end_time=time(11),
    )  # fmt: skip
    ReconciliationReport.objects.create(channel="wechatpay", bill_date=timezone.localdate(), status="ok")
    ScreeningExamSetting.objects.create(exam_code="ct_contrast")
    AuditEvent.objects.create(actor=staff, action="desk_lookup", patient=patient)


@pytest.fixture
def chinese_admin(db: None) -> Client:
    user = User.objects.create_superuser(
        username="root-admin", password="x-very-long-pass-1", display_name="李主任"
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.cookies["django_language"] = "zh-hans"
    client.force_login(user)
    return client


def _pages(superuser: User) -> list[str]:
    request = RequestFactory().get("/admin/")
    request.user = superuser
    urls = [reverse("admin:index")]
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        urls.append(reverse("admin:app_list", args=[opts.app_label]))
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        if model_admin.has_add_permission(request):
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk]))
    return sorted(set(urls))


def _object_names() -> set[str]:
    """The names of the objects (their ``str``): data, shown as the change form's subtitle, not labels."""
    with translation.override("zh-hans"):
        return {str(obj) for model in admin.site._registry for obj in model._default_manager.all()}


@pytest.mark.usefixtures("admin_data")
def test_every_admin_page_is_labelled_in_chinese(chinese_admin: Client) -> None:
    pages = _pages(User.objects.get(username="root-admin"))
    assert len(pages) > 40  # every app's index, every model's changelist and forms
    names = _object_names()
    problems = []
    for url in pages:
        response = chinese_admin.get(url)
        assert response.status_code == 200, url
        assert response.headers["Content-Language"] == "zh-hans", url
        html = response.content.decode()
        labels = labels_of(html)
        problems += [f"{url}: ASCII colon after {m}" for m in re.findall(r"[\u4e00-\u9fff]:</label>", html)]
        assert labels, url
        problems += [f"{url}: {label!r}" for label in labels if untranslated(label) and label not in names]
    assert problems == []


@pytest.mark.usefixtures("admin_data")
def test_the_rows_the_chinese_admin_names_are_named_in_chinese(chinese_admin: Client) -> None:
    """A row's name (page titles, breadcrumbs, "was changed" messages, delete confirmations) is made of
    words for these models, not of codes: in Chinese it reads in Chinese (the identifiers in it stay)."""
    from reservations.models import Session, Slot

    named = (BookingRule, QueueRule, WeeklyTemplate, Session, Slot, Booking, WaitlistEntry, NoShowWaiver,
             ReconciliationReport, ScreeningExamSetting, AuditEvent)  # fmt: skip
    identifiers = re.compile(r"ct_contrast|\d{4}-\d{2}-\d{2}|\d{2}:\d{2}")
    problems = []
    with translation.override("zh-hans"):
        for model in named:
            for row in model._default_manager.all():
                name = identifiers.sub("", str(row))
                if not CJK.search(name) or untranslated(name):
                    problems.append(f"{model.__name__}: {row}")
        booking = Booking.objects.filter(status="booked").get()
        expected = f"预约 {booking.pk}（{Booking.Status.BOOKED.label}）"
        assert str(booking) == expected
    assert problems == []
    page = chinese_admin.get(reverse("admin:reservations_booking_change", args=[booking.pk])).content.decode()
    assert expected in page and f"booking {booking.pk}" not in page


def test_every_model_and_field_of_every_app_has_a_chinese_name(db: None) -> None:
    problems = []
    with translation.override("zh-hans"):
        for app in ("medcard", "reservations", "screening", "dosing"):
            config = apps.get_app_config(app)
            if not CJK.search(str(config.verbose_name)):
                problems.append(f"app {app}: {config.verbose_name}")
            for model in config.get_models():
                opts = model._meta
                for name in (opts.verbose_name, opts.verbose_name_plural):
                    if untranslated(str(name)) or not CJK.search(str(name)):
                        problems.append(f"{opts.label}: {name}")
                for field in opts.concrete_fields:
                    if field.auto_created:
                        continue
                    label = str(field.verbose_name)
                    if untranslated(label):
                        problems.append(f"{opts.label}.{field.name}: {label}")
    assert problems == []


def test_staff_are_greeted_by_their_display_name(db: None) -> None:
    user = factories.staff(role=roles.ADMINISTRATOR, username="admin7")
    user.is_staff = True
    user.display_name = "王主任"
    user.save()
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    page = client.get(reverse("admin:index")).content.decode()
    welcome = re.search(r'<div id="user-tools">(.*?)</div>', page, re.S)
    assert welcome is not None
    assert "王主任" in welcome.group(1) and "admin7" not in welcome.group(1)
    assert "医院管理后台" in page
    staff_page = client.get(reverse("reservations:staff-dashboard")).content.decode()
    who = re.search(r'<span class="who">(.*?)</span>', staff_page)
    assert who is not None and who.group(1) == "王主任"  # the staff pages' header too


def test_the_english_admin_is_in_english(admin_data: None, chinese_admin: Client) -> None:
    chinese_admin.cookies["django_language"] = "en"
    page = chinese_admin.get(reverse("admin:reservations_weeklytemplate_changelist")).content.decode()
    assert "Weekly templates" in page and "online numbers per slice" in page.lower()
