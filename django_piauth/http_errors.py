"""How the three outcomes look on the wire, for plain Django views and DRF alike."""

from __future__ import annotations

from django.http import JsonResponse

from .conf import piauth_settings
from .exceptions import InvalidToken, MalformedToken, UpstreamUnavailable, UserInactive


def www_authenticate() -> str:
    return f'Bearer realm="{piauth_settings.WWW_AUTHENTICATE_REALM}"'


def retry_after_seconds() -> int:
    return int(piauth_settings.RETRY_AFTER)


def rejection_detail(exc: InvalidToken) -> tuple[str, str]:
    """(message, code) for a refused credential; never echoes the credential."""
    if isinstance(exc, MalformedToken):
        return f"Malformed access token: {exc}.", "malformed_token"
    if isinstance(exc, UserInactive):
        return "User inactive or deleted.", "user_inactive"
    return "Invalid or expired access token.", "invalid_token"


UNAVAILABLE_DETAIL = "The identity service cannot be reached; try again shortly."


def json_rejection(exc: InvalidToken) -> JsonResponse:
    message, code = rejection_detail(exc)
    response = JsonResponse({"detail": message, "code": code}, status=401)
    response["WWW-Authenticate"] = www_authenticate()
    return response


def json_unavailable(exc: UpstreamUnavailable) -> JsonResponse:
    response = JsonResponse(
        {"detail": UNAVAILABLE_DETAIL, "code": "upstream_unavailable"}, status=503
    )
    response["Retry-After"] = str(retry_after_seconds())
    return response
