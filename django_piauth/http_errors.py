"""How the three outcomes look on the wire, for plain Django views and DRF alike."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse

from .conf import piauth_settings
from .exceptions import InvalidCredentials, InvalidToken, MalformedToken, UserInactive, WrongApp


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
    if isinstance(exc, InvalidCredentials):
        return "PeerID refused these credentials.", "invalid_credentials"
    if isinstance(exc, WrongApp):
        return "The PeerID token was issued for another app.", "wrong_app"
    return "Invalid or expired access token.", "invalid_token"


UNAVAILABLE_DETAIL = "The identity service cannot be reached; try again shortly."


def json_rejection(exc: InvalidToken) -> JsonResponse:
    message, code = rejection_detail(exc)
    response = JsonResponse({"detail": message, "code": code}, status=401)
    response["WWW-Authenticate"] = www_authenticate()
    return response


def json_unavailable() -> JsonResponse:
    response = JsonResponse(
        {"detail": UNAVAILABLE_DETAIL, "code": "upstream_unavailable"}, status=503
    )
    response["Retry-After"] = str(retry_after_seconds())
    return response


def wants_json(request: HttpRequest) -> bool:
    """An API or script caller (JSON, XHR) rather than a browser navigating to a page."""
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return True
    if (request.content_type or "").endswith("json"):
        return True
    accept = request.headers.get("Accept", "")
    return "json" in accept and "text/html" not in accept


def session_ended_response(request: HttpRequest) -> HttpResponse:
    """The user must sign in again: 401 for API callers, the login page for browsers."""
    if wants_json(request):
        response = JsonResponse(
            {"detail": "Your PeerID session has ended; sign in again.",
             "code": "session_ended"}, status=401)
        response["WWW-Authenticate"] = www_authenticate()
        return response
    return redirect_to_login(request.get_full_path())


def unavailable_response(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        return json_unavailable()
    response = HttpResponse(UNAVAILABLE_DETAIL, status=503, content_type="text/plain")
    response["Retry-After"] = str(retry_after_seconds())
    return response
