"""Password sign-in for both kinds of account, with a lock after repeated failures."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from medcard import services
from medcard.models import User


class LockoutBackend(ModelBackend):
    """Staff sign in with ``username``, patients with ``mobile``; both with a password.

    After ``LOGIN_MAX_FAILURES`` wrong passwords the account is locked for ``LOGIN_LOCKOUT_MINUTES``; while
    locked even the right password is refused (this applies to the admin site too, which uses this backend).
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        mobile: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if password is None:
            return None
        user = services.user_for_credentials(username=username, mobile=mobile)
        if user is None:
            # Spend the same time as a real check, so response times do not reveal which accounts exist.
            User().set_password(password)
            return None
        if user.is_locked():
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            services.user_login_succeeded(user=user)
            return user
        services.user_login_failed(user=user)
        return None
