"""Reading the sign-in endpoints' input: a JSON object or a form, the same way."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .untrusted_json import NotJSON, loads


class BadRequestBody(ValueError):
    """The body is not a JSON object or a form; the message says what was wrong."""


def request_data(request: HttpRequest) -> dict[str, Any]:
    content_type = request.content_type or ""
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            data = loads(request.body or b"{}")
        except NotJSON as exc:
            raise BadRequestBody(f"The body is {exc}.") from None
        if not isinstance(data, dict):
            raise BadRequestBody("The body must be a JSON object.")
        return data
    return request.POST.dict()
