"""Reading the sign-in endpoints' input: a JSON object or a form, the same way."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError

from .untrusted_json import NotJSON, loads


class BadRequestBody(ValueError):
    """The body is not a JSON object or a form; the message says what was wrong."""


def as_bad_body(error: BaseException) -> BadRequestBody | None:
    """The ``BadRequestBody`` for an error Django raises when it refuses to read a body (a
    broken multipart form, one over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` or with too many
    fields), or None for any other error. Django would answer its HTML 400 page; the
    refusals it logs to ``django.security`` are still logged there."""
    if isinstance(error, MultiPartParserError | BadRequest):
        return BadRequestBody("The body is not a form that can be read.")
    if isinstance(error, SuspiciousOperation):
        logging.getLogger(f"django.security.{type(error).__name__}").warning("%s", error)
        return BadRequestBody(f"The body was refused: {error}")
    return None


def request_data(request: HttpRequest) -> dict[str, Any]:
    """The body as a dict, or ``BadRequestBody`` (a JSON 400 for the caller), also for a
    body Django refuses to read (:func:`as_bad_body`)."""
    try:
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
    except (MultiPartParserError, BadRequest, SuspiciousOperation) as exc:
        raise as_bad_body(exc) or BadRequestBody("The body cannot be read.") from exc
