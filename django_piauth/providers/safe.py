"""SAFE Launcher client: ``POST /auth`` (the person at the Launcher allows or denies),
``GET /auth`` (is the token still valid), ``DELETE /auth`` (revoke) and authorised calls
with ``Authorization: Bearer <token>``. Plain HTTP, no models: the grant lives in
:mod:`django_piauth.safe`.

The token never appears in a ``repr``, an exception message or a log line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from django.core.exceptions import ImproperlyConfigured
from urllib3.exceptions import NewConnectionError

from ..conf import default_deadline, on_reload, piauth_settings
from ..exceptions import (
    SafeAuthorizationDenied,
    SafeGrantDead,
    UpstreamError,
    UpstreamUnavailable,
)
from .deadline import DeadlineExceeded
from .http import UpstreamResponse, join_url, send

SERVICE = "SAFE Launcher"
#: The permissions a SAFE Launcher knows: ``SAFE_DRIVE_ACCESS`` (v0.5), ``LOW_LEVEL_API``.
KNOWN_PERMISSIONS: tuple[str, ...] = ("SAFE_DRIVE_ACCESS", "LOW_LEVEL_API")
#: The fields of ``PIAUTH["SAFE_APP"]``, all required.
APP_FIELDS: tuple[str, ...] = ("name", "id", "version", "vendor")
AUTHORIZE_COMMAND = "manage.py piauth_safe_authorize"

_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: fits in a header
_MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class SafeApp:
    """The app as the Launcher knows it. ``id`` and ``vendor`` decide which data it sees."""

    name: str
    id: str
    version: str
    vendor: str

    def as_payload(self) -> dict[str, str]:
        return {"name": self.name, "id": self.id, "version": self.version,
                "vendor": self.vendor}

    def __str__(self) -> str:
        return f"{self.name} {self.version} (id {self.id!r}, vendor {self.vendor!r})"


def app_problems(value: Any) -> list[str]:
    """What is wrong with a ``SAFE_APP`` value; empty when it is usable."""
    if not isinstance(value, Mapping):
        return ["it is not a dict with name, id, version and vendor"]
    problems = []
    for name in APP_FIELDS:
        item = value.get(name)
        if name not in value:
            problems.append(f"{name!r} is missing")
        elif not isinstance(item, str) or not item.strip():
            problems.append(f"{name!r} must be a non-empty string")
    unknown = sorted(str(key) for key in value if key not in APP_FIELDS)
    if unknown:
        problems.append(f"unknown key(s) {', '.join(map(repr, unknown))}")
    return problems


def app_from_setting(value: Any) -> SafeApp:
    """A :class:`SafeApp` from ``PIAUTH["SAFE_APP"]``, or ``ImproperlyConfigured``."""
    if value is None:
        raise ImproperlyConfigured(
            "PIAUTH['SAFE_APP'] is not set: the SAFE Launcher needs the app's name, id, "
            "version and vendor."
        )
    problems = app_problems(value)
    if problems:
        raise ImproperlyConfigured(f"PIAUTH['SAFE_APP']: {'; '.join(problems)}.")
    return SafeApp(**{name: value[name] for name in APP_FIELDS})


def unknown_permissions(permissions: Iterable[str]) -> list[str]:
    """The permissions a SAFE Launcher does not know, in order, without repeats."""
    unknown: list[str] = []
    for permission in permissions:
        if permission not in KNOWN_PERMISSIONS and permission not in unknown:
            unknown.append(permission)
    return unknown


def permissions_from_setting(value: Iterable[str]) -> tuple[str, ...]:
    """``PIAUTH["SAFE_PERMISSIONS"]`` without repeats, or ``ImproperlyConfigured``."""
    permissions = tuple(dict.fromkeys(value))
    unknown = unknown_permissions(permissions)
    if unknown:
        raise ImproperlyConfigured(
            f"PIAUTH['SAFE_PERMISSIONS'] has unknown permission(s) "
            f"{', '.join(map(repr, unknown))}; a SAFE Launcher knows "
            f"{', '.join(KNOWN_PERMISSIONS)}."
        )
    return permissions


@dataclass(frozen=True)
class SafeAuthorization:
    """What ``POST /auth`` answered when the person allowed the app."""

    token: str = field(repr=False)
    permissions: tuple[str, ...] = ()


def _refused(exc: BaseException | None) -> bool:
    """Whether a connection error means nothing listens there (refused, unknown host)."""
    pending: list[Any] = [exc]
    for _ in range(8):
        if not pending:
            return False
        item = pending.pop()
        if isinstance(item, NewConnectionError):
            return True
        if isinstance(item, BaseException):
            pending.extend(item.args)
            pending.append(getattr(item, "reason", None))
            pending.append(item.__cause__)
    return False


def _description(response: UpstreamResponse) -> str | None:
    """The Launcher's ``description`` (or a short text body), made safe to print."""
    text: Any = None
    try:
        body = response.json()
    except UpstreamUnavailable:
        try:
            text = response.body.decode()
        except UnicodeDecodeError:
            text = None
    else:
        if isinstance(body, dict):
            text = body.get("description")
        elif isinstance(body, str):
            text = body
    if not isinstance(text, str):
        return None
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    if len(text) > _MAX_DESCRIPTION:
        text = text[:_MAX_DESCRIPTION] + "..."
    return text or None


class SafeLauncherClient:
    """One SAFE Launcher, at ``base_url``. Holds no token: each call is given one.

    ``timeout`` is (connect, read) for ordinary calls and ``deadline`` the seconds a
    whole one may take; ``authorize_timeout`` is the read timeout of ``POST /auth``,
    which waits for a person to allow or deny, and its deadline is that plus
    ``deadline``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: tuple[float, float] = (3.0, 5.0),
        deadline: float | None = None,
        authorize_timeout: float = 300.0,
        max_response_bytes: int = 256 * 1024,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.deadline = deadline if deadline is not None else default_deadline(timeout)
        self.authorize_timeout = authorize_timeout
        self.max_response_bytes = max_response_bytes

    def __repr__(self) -> str:
        return f"<SafeLauncherClient {self.base_url}>"

    def _send(self, method: str, path: str, *, token: str | None = None,
              json_body: Any = None, headers: Mapping[str, str] | None = None,
              timeout: tuple[float, float] | None = None, deadline: float | None = None,
              max_bytes: int | None = None) -> UpstreamResponse:
        sent_headers = {"Accept": "application/json", **(headers or {})}
        if token is not None:
            sent_headers["Authorization"] = f"Bearer {token}"
        try:
            return send(
                method,
                join_url(self.base_url, path),
                service=SERVICE,
                headers=sent_headers,
                json_body=json_body,
                timeout=timeout or self.timeout,
                deadline=deadline or self.deadline,
                max_bytes=max_bytes or self.max_response_bytes,
            )
        except UpstreamUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, requests.ConnectionError) and not isinstance(
                cause, requests.Timeout
            ) and _refused(cause):
                raise UpstreamUnavailable(
                    f"no SAFE Launcher at {self.base_url} (nothing accepts connections "
                    "there): start the Launcher, or fix PIAUTH['SAFE_LAUNCHER_URL']",
                    service=SERVICE,
                ) from cause
            if isinstance(cause, requests.ConnectTimeout):
                raise UpstreamUnavailable(
                    f"no SAFE Launcher answered at {self.base_url} (connect timeout)",
                    service=SERVICE,
                ) from cause
            raise

    @staticmethod
    def _unexpected(path: str, response: UpstreamResponse) -> Exception:
        """Another 4xx: the Launcher's documented error, described; anything else (a
        5xx, a redirect, a 2xx that is not the documented 200): cannot say."""
        if not 400 <= response.status < 500:
            return UpstreamUnavailable(f"{SERVICE} {path} answered {response.status}",
                                       service=SERVICE)
        description = _description(response)
        return UpstreamError(
            f"{SERVICE} {path} answered {response.status}"
            + (f": {description}" if description else ""),
            status=response.status,
        )

    # POST /auth ---------------------------------------------------------------------

    def authorize(self, app: SafeApp, permissions: Iterable[str], *,
                  timeout: float | None = None) -> SafeAuthorization:
        """Ask the Launcher to authorize ``app``; blocks until the person answers.

        Waits up to ``timeout`` (default: ``authorize_timeout``) seconds. Raises
        :class:`SafeAuthorizationDenied` (401), :class:`UpstreamError` with the Launcher's
        description (400), :class:`UpstreamUnavailable` (no Launcher, no answer in time,
        5xx, a body that is not the documented shape). Never call it from a web request.
        """
        permissions = list(dict.fromkeys(permissions))
        wait = timeout if timeout is not None else self.authorize_timeout
        try:
            response = self._send(
                "POST", "/auth",
                json_body={"app": app.as_payload(), "permissions": permissions},
                timeout=(self.timeout[0], wait),
                deadline=wait + self.deadline,
            )
        except UpstreamUnavailable as exc:
            if isinstance(exc.__cause__, requests.ReadTimeout | DeadlineExceeded):
                raise UpstreamUnavailable(
                    f"nobody answered at the SAFE Launcher at {self.base_url} within "
                    f"{wait:g} s (PIAUTH['SAFE_AUTHORIZE_TIMEOUT']); nothing was granted",
                    service=SERVICE,
                ) from exc.__cause__
            raise
        if response.status == 401:
            raise SafeAuthorizationDenied(
                f"authorization of {app.name} was denied at the SAFE Launcher at "
                f"{self.base_url}"
            )
        if response.status == 400:
            description = _description(response) or "a bad request"
            raise UpstreamError(
                f"the SAFE Launcher at {self.base_url} refused the authorization request: "
                f"{description}",
                status=400,
            )
        if response.status != 200:
            raise self._unexpected("/auth", response)
        return self._parse_authorization(response.json())

    def _parse_authorization(self, body: Any) -> SafeAuthorization:
        wrong_shape = UpstreamUnavailable(
            f"{SERVICE} /auth answered 200 with a body that is not the documented shape",
            service=SERVICE,
        )
        if not isinstance(body, dict):
            raise wrong_shape
        token = body.get("token")
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise wrong_shape
        granted = body.get("permissions", [])
        if not isinstance(granted, list) or not all(isinstance(p, str) for p in granted):
            raise wrong_shape
        return SafeAuthorization(token=token, permissions=tuple(dict.fromkeys(granted)))

    # GET /auth, DELETE /auth ----------------------------------------------------------

    def check(self, token: str) -> bool:
        """``GET /auth``: True while the Launcher accepts ``token``, False on 401.

        Another answer raises :class:`UpstreamUnavailable` (5xx, no answer) or
        :class:`UpstreamError` (any other status, with the Launcher's description)."""
        response = self._send("GET", "/auth", token=token)
        if response.status == 200:
            return True
        if response.status == 401:
            return False
        raise self._unexpected("/auth", response)

    def revoke(self, token: str) -> bool:
        """``DELETE /auth``: True when revoked now, False when it was already dead (401)."""
        response = self._send("DELETE", "/auth", token=token)
        if response.status == 200:
            return True
        if response.status == 401:
            return False
        raise self._unexpected("/auth", response)

    # Any authorised call --------------------------------------------------------------

    def request(self, method: str, path: str, token: str, *, json_body: Any = None,
                headers: Mapping[str, str] | None = None,
                max_bytes: int | None = None) -> UpstreamResponse:
        """An authorised call to ``path`` on this Launcher (never another host).

        401 raises :class:`SafeGrantDead`; 5xx, redirects (never followed) and transport
        failures raise :class:`UpstreamUnavailable`; any other answer is returned as it is.
        """
        response = self._send(method.upper(), path, token=token, json_body=json_body,
                              headers=headers, max_bytes=max_bytes)
        if response.status == 401:
            raise SafeGrantDead(
                f"the SAFE Launcher at {self.base_url} no longer accepts the token; "
                f"run `{AUTHORIZE_COMMAND}`"
            )
        if response.cannot_say:
            raise self._unexpected(path.partition("?")[0], response)
        return response


_client: SafeLauncherClient | None = None


def get_safe_client() -> SafeLauncherClient:
    """The client built from ``PIAUTH``; rebuilt when the settings change."""
    global _client
    client = _client
    if client is None:
        client = _client = SafeLauncherClient(
            piauth_settings.SAFE_LAUNCHER_URL,
            timeout=piauth_settings.timeout,
            deadline=piauth_settings.deadline,
            authorize_timeout=piauth_settings.SAFE_AUTHORIZE_TIMEOUT,
            max_response_bytes=piauth_settings.MAX_RESPONSE_BYTES,
        )
    return client


def _forget_client() -> None:
    global _client
    _client = None


on_reload(_forget_client)
