"""Sign-in and sign-out endpoints for session-based sites: JSON in, JSON out.

CSRF protection stays on: the page that calls them sets the CSRF cookie
(``ensure_csrf_cookie``) and sends ``X-CSRFToken``.
"""

from __future__ import annotations

import logging

from django.contrib.auth import login, logout
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.cache import never_cache

from .backends import PiBackend, configured_backend
from .exceptions import InvalidToken, UpstreamUnavailable
from .http_errors import json_rejection, json_unavailable
from .request_data import BadRequestBody, request_data

logger = logging.getLogger("django_piauth")


def bad_request(message: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": message, "code": code}, status=400)


@method_decorator(never_cache, name="dispatch")
class PiLoginView(View):
    """POST ``{"accessToken": ...}``: verify it with ``/v2/me``, then start a session."""

    http_method_names = ["post", "options"]
    backend_class = PiBackend

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            data = request_data(request)
        except BadRequestBody as exc:
            return bad_request(str(exc), "bad_body")
        token = data.get("accessToken")
        if not isinstance(token, str) or not token:
            return bad_request("accessToken is required.", "missing_token")
        backend, backend_path = configured_backend(self.backend_class)
        if backend_path is None:
            raise ImproperlyConfigured(
                f"Session sign-in needs {self.backend_class.__name__} in AUTHENTICATION_BACKENDS."
            )
        try:
            user, identity = backend.authenticate_token(request, token)
        except InvalidToken as exc:
            logger.info("Pi sign-in refused: %s", exc)
            return json_rejection(exc)
        except UpstreamUnavailable as exc:
            logger.warning("Pi Platform unavailable during sign-in: %s", exc)
            return json_unavailable(exc)
        login(request, user, backend=backend_path)
        return JsonResponse({"uid": identity.uid, "username": identity.username})


@method_decorator(never_cache, name="dispatch")
class LogoutView(View):
    """POST: end the session. A form may pass a same-site ``next`` to be redirected."""

    http_method_names = ["post", "options"]

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            next_url = request_data(request).get("next")
        except BadRequestBody:
            next_url = None
        logout(request)
        if isinstance(next_url, str) and url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return HttpResponseRedirect(next_url)
        return JsonResponse({"detail": "Signed out."})
