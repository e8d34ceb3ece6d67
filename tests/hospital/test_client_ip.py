"""Which address per-network limits count: REMOTE_ADDR, or behind trusted proxies the client before them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client, RequestFactory

from core.clientip import client_ip
from medcard import sms
from medcard.models import SmsCode
from tests.hospital.test_settings import PRODUCTION_ENV, _run_django

PROXY = "10.0.0.2"


@pytest.fixture(autouse=True)
def _empty_outbox() -> Iterator[None]:
    sms.outbox.clear()
    yield
    sms.outbox.clear()


def _ip(remote: str, forwarded: str | None = None) -> str | None:
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=remote, **extra))


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRUSTED_PROXIES = []
    assert _ip("203.0.113.7", "198.51.100.1") == "203.0.113.7"


def test_behind_a_trusted_proxy_the_client_before_it_counts(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    assert _ip(PROXY, "198.51.100.1") == "198.51.100.1"
    assert _ip(PROXY, "198.51.100.1, 10.0.0.9") == "198.51.100.1"  # two proxies of ours
    assert _ip(PROXY) == PROXY  # no header: the proxy itself is all we know


def test_a_client_cannot_choose_its_address_by_writing_the_header(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    # The client sent "X-Forwarded-For: 1.2.3.4"; our proxy appended the address it saw.
    assert _ip(PROXY, "1.2.3.4, 198.51.100.1") == "198.51.100.1"
    assert _ip(PROXY, "1.2.3.4, not-an-address") == PROXY
    # A request that did not come through a trusted proxy is never believed.
    assert _ip("198.51.100.66", "10.0.0.3") == "198.51.100.66"


@pytest.mark.django_db
def test_patients_behind_the_proxy_each_have_their_own_sms_budget(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRUSTED_PROXIES = [PROXY]
    settings.SMS_CODES_PER_IP_PER_HOUR = 2
    client = Client(REMOTE_ADDR=PROXY)

    def ask(mobile: str, network: str) -> int:
        return client.post(
            "/api/v1/auth/sms-codes/", {"mobile": mobile}, HTTP_X_FORWARDED_FOR=network
        ).status_code

    assert [ask("13912340001", "198.51.100.1"), ask("13912340002", "198.51.100.1")] == [202, 202]
    assert ask("13912340003", "198.51.100.1") == 429  # this network's budget is spent ...
    assert ask("13912340004", "198.51.100.2") == 202  # ... but not the next patient's behind the same proxy
    assert set(SmsCode.objects.values_list("ip", flat=True)) == {"198.51.100.1", "198.51.100.2"}


def test_a_malformed_trusted_proxy_stops_the_process_with_its_name() -> None:
    result = _run_django(dict(PRODUCTION_ENV, TRUSTED_PROXIES="10.0.0.0/8, proxy.internal"), "check")
    assert result.returncode != 0
    assert "TRUSTED_PROXIES must be IP addresses or networks" in result.stderr
