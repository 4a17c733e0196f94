"""A fake SAFE Launcher: ``POST /auth`` with a person who allows or denies, ``GET /auth``,
``DELETE /auth``, and one authorised route (``GET /nfs/directory/app/...``).

All state lives in memory behind a lock; serve it with
:func:`~django_piauth.testing.responses_adapter.serve_with_responses` or
:class:`~django_piauth.testing.server.LoopbackServer`. Tokens are JWT-looking strings;
none is ever recorded in the call log or shown in a ``repr``.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .base import FakeUpstreamBase, HandlerResult, json_response

#: The permissions the fake Launcher accepts, as a real one (v0.5 and later) does.
KNOWN_PERMISSIONS: tuple[str, ...] = ("SAFE_DRIVE_ACCESS", "LOW_LEVEL_API")
APP_FIELDS: tuple[str, ...] = ("name", "id", "version", "vendor")
DEFAULT_APP: dict[str, str] = {"name": "Fake App", "id": "com.example.fake",
                               "version": "0.0.1", "vendor": "Example"}

_UNAUTHORISED: HandlerResult = (401, {"Content-Type": "text/plain; charset=utf-8"},
                                b"Unauthorised")
_OK: HandlerResult = (200, {"Content-Type": "text/plain; charset=utf-8"}, b"OK")
_APP_DIRECTORY = "/nfs/directory/app"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwt_looking_token() -> str:
    header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
    session_id = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    payload = _b64url(json.dumps({"id": session_id}, separators=(",", ":")).encode())
    return f"{header}.{payload}.{_b64url(secrets.token_bytes(32))}"


def _error(status: int, description: str) -> HandlerResult:
    """An error as the Launcher gives it: ``{"errorCode": ..., "description": ...}``."""
    return json_response(status, {"errorCode": status, "description": description})


@dataclass
class _Session:
    app: dict[str, str]
    permissions: tuple[str, ...]
    created_at: float
    alive: bool = True


@dataclass
class _Decision:
    allow: bool
    remaining: int | None  # None: until changed


@dataclass
class _Wait:
    seconds: float
    remaining: int


@dataclass
class FakeAuthorization:
    """One ``POST /auth`` the person answered. Holds no token."""

    app: dict[str, str]
    permissions_requested: list[str]
    outcome: str  # "approved" or "denied"
    permissions_granted: list[str] = field(default_factory=list)


class FakeSafeLauncher(FakeUpstreamBase):
    """An in-memory SAFE Launcher for tests and demos.

    The person at the Launcher approves every request unless told otherwise:
    :meth:`deny` (the next request answers 401 ``Unauthorised``), :meth:`slow_answer`
    (the person takes a while), :meth:`approve` (back to approving, optionally granting
    fewer permissions than asked). :meth:`restart` kills every token, :meth:`remove_app`
    the tokens of one app. Bad requests get the Launcher's 400 bodies
    (``{"errorCode": 400, "description": "Fields are missing"}``, ``"Invalid
    permissions"``...). Failure injection (:meth:`fail_with`, :meth:`delay`,
    :meth:`garbage`, :meth:`drop_connection`) applies to every route.
    """

    def __init__(
        self,
        *,
        known_permissions: Iterable[str] = KNOWN_PERMISSIONS,
        latency: float = 0.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(latency=latency, clock=clock, sleep=sleep)
        self.known_permissions = tuple(known_permissions)
        self._sessions: dict[str, _Session] = {}
        self._default = _Decision(allow=True, remaining=None)
        self._decisions: list[_Decision] = []
        self._grant_only: tuple[str, ...] | None = None
        self._waits: list[_Wait] = []
        self._authorizations: list[FakeAuthorization] = []
        self._restarts = 0
        self._local = threading.local()

    def __repr__(self) -> str:
        return (f"<FakeSafeLauncher url={self.url!r} live_tokens={self.live_tokens} "
                f"restarts={self._restarts}>")

    # The person at the Launcher --------------------------------------------------------

    def approve(self, permissions: Iterable[str] | None = None) -> None:
        """From now on the person allows every request (the default), forgetting pending
        denials. With ``permissions``, only those of the requested ones are granted."""
        with self._lock:
            self._decisions.clear()
            self._default = _Decision(allow=True, remaining=None)
            self._grant_only = tuple(permissions) if permissions is not None else None

    def deny(self, count: int | None = 1) -> None:
        """The person denies the next ``count`` requests (every one when ``None``)."""
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or count < 1):
            raise ValueError("count is a positive whole number, or None for 'until approve()'")
        with self._lock:
            if count is None:
                self._default = _Decision(allow=False, remaining=None)
            else:
                self._decisions.append(_Decision(allow=False, remaining=count))

    def slow_answer(self, seconds: float, count: int = 1) -> None:
        """The person takes ``seconds`` to answer the next ``count`` requests.

        Served through ``responses``, an answer slower than the client's read timeout
        raises ``requests.ReadTimeout`` at once; on loopback the fake really waits.
        """
        if seconds < 0 or count < 1:
            raise ValueError("seconds is not negative and count is at least 1")
        with self._lock:
            self._waits.append(_Wait(float(seconds), count))

    # The Launcher ----------------------------------------------------------------------

    def restart(self) -> None:
        """The Launcher restarts: every token dies (the apps' data stays)."""
        with self._lock:
            for session in self._sessions.values():
                session.alive = False
            self._restarts += 1

    def remove_app(self, app_id: str, vendor: str) -> None:
        """The person removes an app at the Launcher: its tokens die."""
        with self._lock:
            for session in self._sessions.values():
                if (session.app.get("id"), session.app.get("vendor")) == (app_id, vendor):
                    session.alive = False

    def revoke(self, token: str) -> None:
        """Make ``token`` answer 401 from now on (unknown tokens are ignored)."""
        with self._lock:
            session = self._sessions.get(token)
            if session is not None:
                session.alive = False

    def issue_token(self, app: Mapping[str, str] | None = None,
                    permissions: Iterable[str] = ("SAFE_DRIVE_ACCESS",)) -> str:
        """A live token, as if the person had just approved ``app`` (no call recorded)."""
        with self._lock:
            return self._new_session(dict(app or DEFAULT_APP), tuple(permissions))

    def token_valid(self, token: str) -> bool:
        """Whether ``token`` is live."""
        with self._lock:
            session = self._sessions.get(token)
            return session is not None and session.alive

    @property
    def live_tokens(self) -> int:
        """How many tokens are live."""
        with self._lock:
            return sum(1 for session in self._sessions.values() if session.alive)

    @property
    def restarts(self) -> int:
        """How many times :meth:`restart` ran."""
        return self._restarts

    @property
    def authorizations(self) -> list[FakeAuthorization]:
        """The ``POST /auth`` requests the person answered, oldest first."""
        with self._lock:
            return list(self._authorizations)

    def _new_session(self, app: dict[str, str], permissions: tuple[str, ...]) -> str:
        token = _jwt_looking_token()
        self._sessions[token] = _Session(app=app, permissions=permissions,
                                         created_at=self.now())
        return token

    # Serving ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes, *,
               timeout: float | None = None) -> HandlerResult:
        self._local.timeout = timeout  # for the person's wait, which route() applies
        try:
            return super().handle(method, path, headers, body, timeout=timeout)
        finally:
            self._local.timeout = None

    def route(self, method: str, path: str, query: str, headers: Mapping[str, str],
              body: bytes) -> HandlerResult:
        if path == "/auth":
            if method == "POST":
                return self._authorize(body)
            session = self._session_of(headers)
            if method == "GET":
                return _OK if session is not None else _UNAUTHORISED
            if method == "DELETE":
                if session is None:
                    return _UNAUTHORISED
                with self._lock:
                    session.alive = False
                return _OK
            return _error(405, "Method not allowed")
        session = self._session_of(headers)
        if session is None:
            return _UNAUTHORISED
        if method == "GET" and (path == _APP_DIRECTORY or path.startswith(_APP_DIRECTORY + "/")):
            created = int(session.created_at * 1000)
            return json_response(200, {
                "info": {"name": path.rstrip("/").rsplit("/", 1)[-1], "isPrivate": True,
                         "createdOn": created, "modifiedOn": created, "metadata": None},
                "files": [],
                "subDirectories": [],
            })
        return _error(404, "Not found")

    def _session_of(self, headers: Mapping[str, str]) -> _Session | None:
        authorization = headers.get("authorization", "")
        scheme, _sep, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            return None
        with self._lock:
            session = self._sessions.get(token)
            return session if session is not None and session.alive else None

    def _authorize(self, body: bytes) -> HandlerResult:
        try:
            request = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            return _error(400, "Invalid request body")
        app = request.get("app") if isinstance(request, dict) else None
        if not isinstance(app, dict) or not all(app.get(name) for name in APP_FIELDS):
            return _error(400, "Fields are missing")
        if not all(isinstance(app[name], str) and app[name].strip() for name in APP_FIELDS):
            return _error(400, "Values cannot be empty")
        if "permissions" not in request:
            return _error(400, "Permission field is missing")
        requested = request["permissions"]
        if not isinstance(requested, list) or any(
            permission not in self.known_permissions for permission in requested
        ):
            return _error(400, "Invalid permissions")
        app = {name: app[name] for name in APP_FIELDS}
        with self._lock:
            decision = self._decisions[0] if self._decisions else self._default
            if decision.remaining is not None:
                decision.remaining -= 1
                if decision.remaining <= 0:
                    self._decisions.remove(decision)
            allow = decision.allow
            grant_only = self._grant_only
            wait = 0.0
            if self._waits:
                pending = self._waits[0]
                wait = pending.seconds
                pending.remaining -= 1
                if pending.remaining <= 0:
                    self._waits.pop(0)
        if wait > 0:
            timeout = getattr(self._local, "timeout", None)
            if timeout is not None and wait > timeout:
                raise TimeoutError(f"the person took {wait:g}s")
            (self._sleep or time.sleep)(wait)
        with self._lock:
            if not allow:
                self._authorizations.append(
                    FakeAuthorization(app=app, permissions_requested=list(requested),
                                      outcome="denied"))
                return _UNAUTHORISED
            granted = [p for p in dict.fromkeys(requested)
                       if grant_only is None or p in grant_only]
            token = self._new_session(app, tuple(granted))
            self._authorizations.append(
                FakeAuthorization(app=app, permissions_requested=list(requested),
                                  outcome="approved", permissions_granted=granted))
        return json_response(200, {"token": token, "permissions": granted})
