"""Sign-in and sign-out endpoints for session-based sites: JSON in, JSON out.

CSRF protection stays on: the page that calls them sets the CSRF cookie
(``ensure_csrf_cookie``) and sends ``X-CSRFToken``.

Passwords, tokens and codes are kept out of Django's error reports: the form fields
that carry them are ``sensitive_post_parameters`` and the locals that hold them (a JSON
body is parsed into ``data``) ``sensitive_variables``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from .backends import LinkedAccountBackend, PeerIDBackend, PiBackend, configured_backend
from .conf import piauth_settings
from .drf import PI_UID_SESSION_KEY
from .exceptions import InvalidToken, UpstreamUnavailable
from .http_errors import json_rejection, json_unavailable
from .providers.peerid import get_peerid_client
from .request_data import BadRequestBody, request_data

logger = logging.getLogger("django_piauth")

#: Where peerid-authorize keeps the OAuth ``state`` (and ``next``) for the callback.
STATE_SESSION_KEY = "_piauth_peerid_oauth"


def bad_request(message: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": message, "code": code}, status=400)


def safe_next(request: HttpRequest, next_url: Any) -> str | None:
    """``next_url`` if it stays on this site, else None."""
    if isinstance(next_url, str) and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return None


def login_failed(request: HttpRequest, login_name: str) -> None:
    """Send Django's ``user_login_failed`` for a refused PeerID login (a wrong password,
    mostly), as ``authenticate()`` does (these views call the backend directly), so lockout
    tools such as django-axes count the failure. The credentials carry the login (under
    ``username``, where such tools look, and ``peerid_login``), never the password or
    the mobile number.

    A refused Pi access token or PeerID authorization code sends nothing: there is no
    username to count against; they are long random strings nobody guesses; and they are
    mostly refused because they expired, so counting them would lock out the people
    (or the shared IP addresses) whose app merely sent an old token.
    """
    user_login_failed.send(sender=__name__, request=request,
                           credentials={"username": login_name, "peerid_login": login_name})


def sign_in(request: HttpRequest, backend_class: type[LinkedAccountBackend],
            attempt: Callable[[Any], tuple[Any, Any]],
            on_refused: Callable[[], None] | None = None,
            ) -> tuple[Any, HttpResponse | None]:
    """Run ``attempt(backend)`` and start a session for its user.

    Returns (what ``attempt`` returned second, None) on success, or (None, the 401/503
    response) when upstream said no or could not say. Nobody is signed in then;
    ``on_refused()`` runs when upstream (or the backend) said no.
    """
    backend, backend_path = configured_backend(backend_class)
    if backend_path is None:
        raise ImproperlyConfigured(
            f"Session sign-in needs {backend_class.__name__} in AUTHENTICATION_BACKENDS."
        )
    try:
        user, detail = attempt(backend)
    except InvalidToken as exc:
        logger.info("%s sign-in refused: %s", backend.provider, exc)
        if on_refused is not None:
            on_refused()
        return None, json_rejection(exc)
    except UpstreamUnavailable as exc:
        logger.warning("%s unavailable during sign-in: %s", backend.provider, exc)
        return None, json_unavailable()
    login(request, user, backend=backend_path)
    return detail, None


class JsonPostView(View):
    """POST only, never cached; the body is a JSON object or a form."""

    http_method_names = ["post", "options"]

    @method_decorator(never_cache)
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return super().dispatch(request, *args, **kwargs)

    @sensitive_variables("data")
    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            data = request_data(request)
        except BadRequestBody as exc:
            return bad_request(str(exc), "bad_body")
        return self.handle(request, data)

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        raise NotImplementedError


@method_decorator(sensitive_post_parameters("accessToken"), name="dispatch")
class PiLoginView(JsonPostView):
    """POST ``{"accessToken": ...}``: verify it with ``/v2/me``, then start a session."""

    @sensitive_variables("data", "token")
    def handle(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        token = data.get("accessToken")
        if not isinstance(token, str) or not token:
            return bad_request("accessToken is required.", "missing_token")
        identity, refused = sign_in(
            request, PiBackend, lambda backend: backend.authenticate_token(request, token)
        )
        if refused is not None:
            return refused
        request.session[PI_UID_SESSION_KEY] = identity.uid  # what payment views trust
        return JsonResponse({"uid": identity.uid, "username": identity.username})


@method_decorator(sensitive_post_parameters("password", "mobile"), name="dispatch")
class PeerIDLoginView(JsonPostView):
    """POST ``login`` with ``password`` (and optionally ``mobile``): PeerID's password
    flow. ``mobile`` alone only with ``PIAUTH['PEERID_ALLOW_MOBILE_SIGN_IN']``."""

    @sensitive_variables("data", "password", "mobile")
    def handle(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        login_name, password, mobile = (data.get(k) for k in ("login", "password", "mobile"))
        if not isinstance(login_name, str) or not login_name:
            return bad_request("login is required.", "missing_login")
        password = password if isinstance(password, str) and password else None
        mobile = mobile if isinstance(mobile, str) and mobile else None
        if not PeerIDBackend.secrets_suffice(password, mobile):
            if piauth_settings.PEERID_ALLOW_MOBILE_SIGN_IN:
                return bad_request("password or mobile is required.", "missing_password")
            return bad_request("password is required (a mobile number alone does not "
                               "sign in).", "missing_password")
        credential, refused = sign_in(request, PeerIDBackend, lambda backend: (
            backend.sign_in_with_password(request, login_name, password=password,
                                          mobile=mobile)),
            on_refused=lambda: login_failed(request, login_name))
        if refused is not None:
            return refused
        pioneer = credential.pioneer
        return JsonResponse({"uid": pioneer.uid, "username": pioneer.username or None})


def peerid_redirect_uri(request: HttpRequest) -> str:
    return piauth_settings.PEERID_REDIRECT_URI or request.build_absolute_uri(
        reverse("piauth:peerid-callback"))


@method_decorator(never_cache, name="dispatch")
class PeerIDAuthorizeView(View):
    """GET: send the browser to PeerID's consent page with a fresh ``state``."""

    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        state = secrets.token_urlsafe(32)
        request.session[STATE_SESSION_KEY] = {
            "state": state, "next": safe_next(request, request.GET.get("next")),
        }
        url = get_peerid_client().authorize_url(peerid_redirect_uri(request), state)
        return HttpResponseRedirect(url)


@method_decorator(never_cache, name="dispatch")
class PeerIDCallbackView(View):
    """GET ``?code=...&state=...``: check the state, exchange the code once, sign in."""

    http_method_names = ["get"]

    @sensitive_variables("code")
    def get(self, request: HttpRequest) -> HttpResponse:
        expected = request.session.pop(STATE_SESSION_KEY, None)  # a state is used once
        state = request.GET.get("state", "")
        if not isinstance(expected, dict) or not constant_time_compare(
                state, expected.get("state", "")) or not state:
            return bad_request("The sign-in link is stale or was not started here; "
                               "start again.", "bad_state")
        code = request.GET.get("code")
        if not code:
            return bad_request("PeerID sent no authorization code.", "missing_code")
        _credential, refused = sign_in(request, PeerIDBackend, lambda backend: (
            backend.sign_in_with_code(request, code)))
        if refused is not None:
            return refused
        return HttpResponseRedirect(expected.get("next") or resolve_url(
            settings.LOGIN_REDIRECT_URL))


class LogoutView(JsonPostView):
    """POST: end the session. A form may pass a same-site ``next`` to be redirected."""

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            next_url = safe_next(request, request_data(request).get("next"))
        except BadRequestBody:
            next_url = None
        logout(request)
        if next_url:
            return HttpResponseRedirect(next_url)
        return JsonResponse({"detail": "Signed out."})
