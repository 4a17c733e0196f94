"""``PeerIDRefreshMiddleware``: a PeerID session's tokens are alive before the view runs.

Place it after ``AuthenticationMiddleware``. Sessions not signed in with PeerID pass
through at no cost (no query). A dead refresh token signs the user out (redirect to
``LOGIN_URL`` with ``next``, or 401 for JSON/XHR callers); an outage answers 503 and
keeps the session.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

from .exceptions import PeerIDSessionEnded, UpstreamUnavailable
from .http_errors import session_ended_response, unavailable_response
from .peerid import SESSION_KEY, fresh_session_credential

logger = logging.getLogger("django_piauth")


def _check_session(request: HttpRequest) -> HttpResponse | None:
    """None to go on with the view, or the response that replaces it."""
    try:
        # An attribute this middleware adds to the request (PeerIDAuthentication reads it).
        request.peerid_credential = fresh_session_credential(request)  # type: ignore[attr-defined]
    except PeerIDSessionEnded as exc:
        logger.info("PeerID session ended: %s", exc)
        logout(request)
        return session_ended_response(request)
    except UpstreamUnavailable as exc:
        logger.warning("PeerID unavailable while refreshing a session: %s", exc)
        return unavailable_response(request)
    return None


class PeerIDRefreshMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]
                 | Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        request.peerid_credential = None  # type: ignore[attr-defined]  # as in _check_session
        if SESSION_KEY in request.session:
            response = _check_session(request)
            if response is not None:
                return response
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        request.peerid_credential = None  # type: ignore[attr-defined]  # as in _check_session
        if await request.session.ahas_key(SESSION_KEY):
            response = await sync_to_async(_check_session)(request)
            if response is not None:
                return response
        # Only called when is_async: get_response is then a coroutine function.
        get_response = cast("Callable[[HttpRequest], Awaitable[HttpResponse]]",
                            self.get_response)
        return await get_response(request)
