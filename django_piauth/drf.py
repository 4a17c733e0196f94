"""Django REST framework authentication classes.

They only parse the request and translate outcomes; who the user is comes from the
backends (``configured_backend``), so a subclass of ``PiBackend`` listed in
``AUTHENTICATION_BACKENDS`` is what DRF uses too.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import logout
from django.views.decorators.debug import sensitive_variables
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.request import Request

from .backends import PiBackend, configured_backend
from .exceptions import InvalidToken, PeerIDSessionEnded, UpstreamUnavailable
from .http_errors import UNAVAILABLE_DETAIL, rejection_detail, retry_after_seconds, www_authenticate
from .peerid import SESSION_KEY, fresh_session_credential
from .providers.peerid import PeerIDIdentity
from .providers.pi import PiIdentity

logger = logging.getLogger("django_piauth")


class ServiceUnavailable(exceptions.APIException):
    """503; DRF's exception handler turns ``wait`` into a ``Retry-After`` header."""

    status_code = 503
    default_detail = UNAVAILABLE_DETAIL
    default_code = "upstream_unavailable"

    def __init__(self, wait: int) -> None:
        super().__init__()
        self.wait = wait


class PiAuthentication(BaseAuthentication):
    """``Authorization: Bearer <Pi access token>``.

    Another scheme, or no header: ``None``, so other classes can try. A malformed or
    rejected token: 401 with ``WWW-Authenticate``. Upstream outage: 503 with
    ``Retry-After``. ``request.auth`` is the verified ``PiIdentity``, never the token.
    """

    keyword = "Bearer"
    backend_class = PiBackend

    @sensitive_variables("header", "credentials", "token")  # not in error reports
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        token = credentials.strip(" ")
        if not token or " " in token:
            raise exceptions.AuthenticationFailed(
                f"Invalid Authorization header: expected '{self.keyword} <token>'.",
                code="malformed_header",
            )
        backend, _path = configured_backend(self.backend_class)
        try:
            return backend.authenticate_token(request._request, token)
        except InvalidToken as exc:
            message, code = rejection_detail(exc)
            raise exceptions.AuthenticationFailed(message, code=code) from None
        except UpstreamUnavailable as exc:
            logger.warning("Pi Platform unavailable during API authentication: %s", exc)
            raise ServiceUnavailable(wait=retry_after_seconds()) from None

    def authenticate_header(self, request: Request) -> str:
        return www_authenticate()


class PeerIDAuthentication(SessionAuthentication):
    """A session signed in with PeerID, its tokens refreshed when due; CSRF enforced
    like DRF's ``SessionAuthentication``.

    Not a PeerID session: ``None``. A dead refresh token: the user is signed out and
    the request gets 401. PeerID cannot say: 503 with ``Retry-After``, session kept.
    ``request.auth`` is the ``PeerIDIdentity`` (uid, username, scopes), never a token.
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        django_request = request._request
        user = getattr(django_request, "user", None)
        if user is None or not user.is_active or SESSION_KEY not in django_request.session:
            return None
        credential = getattr(django_request, "peerid_credential", None)
        if credential is None:  # PeerIDRefreshMiddleware did not run (or found none)
            try:
                credential = fresh_session_credential(django_request)
            except PeerIDSessionEnded:
                logout(django_request)
                raise exceptions.AuthenticationFailed(
                    "Your PeerID session has ended; sign in again.", code="session_ended"
                ) from None
            except UpstreamUnavailable as exc:
                logger.warning("PeerID unavailable during API authentication: %s", exc)
                raise ServiceUnavailable(wait=retry_after_seconds()) from None
            django_request.peerid_credential = credential  # type: ignore[attr-defined]
        if credential is None:
            return None
        self.enforce_csrf(request)
        pioneer = credential.pioneer
        return user, PeerIDIdentity(uid=pioneer.uid, username=pioneer.username or None,
                                    scopes=tuple(credential.scope))

    def authenticate_header(self, request: Request) -> str:
        return www_authenticate()


#: Where ``pi-login`` keeps the verified Pi uid of the session's Pioneer.
PI_UID_SESSION_KEY = "_piauth_pi_uid"


class PiSessionAuthentication(SessionAuthentication):
    """A session started by ``piauth:pi-login``; CSRF enforced like DRF's
    ``SessionAuthentication``. ``request.auth`` is a ``PiIdentity`` with the uid the Pi
    Platform vouched for at sign-in (no username: ask the Pioneer row). Another session,
    or none: ``None``."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        django_request = request._request
        user = getattr(django_request, "user", None)
        session = getattr(django_request, "session", None)
        uid = session.get(PI_UID_SESSION_KEY) if session is not None else None
        if user is None or not user.is_active or not isinstance(uid, str) or not uid:
            return None
        # The Django request: DRF's would parse the body for the form token, which a
        # view without a parser for it answers 415 instead of the CSRF 403. (The stubs
        # want DRF's; enforce_csrf hands it to Django's CsrfViewMiddleware, made for this.)
        self.enforce_csrf(django_request)  # type: ignore[arg-type]
        return user, PiIdentity(uid=uid, username=None)

    def authenticate_header(self, request: Request) -> str:
        return www_authenticate()
