"""The desk's second-factor limit under parallel guesses, on PostgreSQL with real connections."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from django.db import connection

from core.errors import AppError
from medcard import roles, services
from medcard.models import Patient
from tests import factories
from tests.conftest import redis_url_for_tests, require_or_skip
from tests.reservations.test_concurrency import _at_once

pytestmark = pytest.mark.django_db(transaction=True)

GUESSES = 30


def test_thirty_parallel_wrong_second_factors_get_exactly_five_tries(settings) -> None:  # type: ignore[no-untyped-def]
    require_or_skip(connection.vendor == "postgresql", "row locks and concurrent connections need PostgreSQL")
    redis_url = redis_url_for_tests()
    require_or_skip(redis_url is not None, "production's cache is Redis: the race needs its round trips")
    # Production's cache (a counter read then written back over the network is where 30 guesses got 9 tries).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"desk-race-{uuid.uuid4().hex}",
        }
    }
    account = factories.patient_account()
    holder = Patient.objects.get(links__account=account, links__relationship="self")
    card = holder.cards.get(status="active")
    desks = [factories.staff(role=roles.FRONT_DESK, username=f"desk-race-{n}") for n in range(3)]
    wrong = "0000" if holder.id_number[-4:] != "0000" else "1111"

    def guess(n: int) -> str:
        try:
            services.desk_lookup_card_number(staff=desks[n % 3], number=card.number, id_last4=wrong)
        except AppError as exc:
            return exc.code
        return "found"

    results = _at_once([lambda n=n: guess(n) for n in range(GUESSES)])
    assert Counter(results) == {"second_factor_wrong": 5, "locked": GUESSES - 5}
    # Even the right answer is refused now: the card number is closed to the desk for the hour.
    with pytest.raises(AppError, match="locked"):
        services.desk_lookup_card_number(staff=desks[0], number=card.number, id_last4=holder.id_number[-4:])
