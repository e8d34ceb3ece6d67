"""Schemathesis hooks for the API test (loaded by the CLI through ``SCHEMATHESIS_HOOKS``).

The session cookie is the schema's ``cookieAuth`` and is given through schemathesis' own auth config, so
its auth checks can take it away. Unsafe methods also need Django's CSRF pair (the ``csrftoken`` cookie
and the ``X-CSRFToken`` header, with a same-origin ``Referer``), which a browser client sends with every
call: added here to every request.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    token = os.environ["API_TEST_CSRF_TOKEN"]
    case.cookies = {**(case.cookies or {}), "csrftoken": token}
    case.headers = {
        **(case.headers or {}),
        "X-CSRFToken": token,
        "Referer": os.environ["API_TEST_BASE_URL"] + "/",
    }
