"""The API's request parsers (kept apart from core.api: DRF imports them while it loads its settings)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

PARSE_ERROR_MESSAGE = gettext_lazy("The request body is not valid JSON.")


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, with a body nested past Python's recursion limit refused as a parse error (a 400 in
    the API's format) instead of escaping as a RecursionError (a server error)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(PARSE_ERROR_MESSAGE) from None
