"""Password sign-in for both kinds of account, throttled by the name signed in with and by the source."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from core.clientip import client_ip
from core.prepared import Prepared
from medcard import services
from medcard.models import User

# The signed-in account, read on every signed-in request: compiled once per process (core/prepared.py).
_account_by_id = Prepared(lambda user_id: User._default_manager.filter(pk=user_id)[:1])


class LockoutBackend(ModelBackend):
    """Staff sign in with ``username``, patients with ``mobile``; both with a password.

    After ``LOGIN_MAX_FAILURES`` wrong passwords for one name from one source, that name is refused from
    that source for ``LOGIN_LOCKOUT_MINUTES`` (even with the right password); after
    ``LOGIN_MAX_FAILURES_PER_SOURCE`` from one source, every name is. A stranger elsewhere therefore cannot
    lock a staff member out, and unknown names are counted and answered exactly like real ones. This applies
    to the admin site too.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        mobile: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        identifier = username or mobile
        if password is None or not identifier:
            return None
        source = client_ip(request) if request is not None else None
        if services.login_throttled_until(identifier=identifier, source=source) is not None:
            User().set_password(password)  # the same time as a real check
            return None
        user = services.user_for_credentials(username=username, mobile=mobile)
        if user is None:
            # Spend the same time as a real check, so response times do not reveal which accounts exist.
            User().set_password(password)
        elif user.check_password(password) and self.user_can_authenticate(user):
            services.login_succeeded(identifier=identifier, source=source)
            return user
        services.login_failed(identifier=identifier, source=source)
        return None

    def get_user(self, user_id: Any) -> User | None:
        """The session's account, as Django's own backend finds it (None once it is deactivated)."""
        found = _account_by_id(user_id)  # Django has already turned the session's value into a key
        user = found[0] if found else None
        return user if user is not None and self.user_can_authenticate(user) else None
