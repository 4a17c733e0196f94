"""A fake PeerID (Peerplays) server: the password and authorization-code flows, rotating
refresh tokens and the token-protected app routes, as the real server's code behaves.

Routes (all under the base URL):

- ``POST /api/v1/auth/token``: ``login`` (username or e-mail), ``password`` and/or
  ``mobile``, ``client_id``. No client secret.
- ``GET /permissions?client_id=..&redirect_uri=..&state=..``: the browser page. With
  :attr:`FakePeerID.browser_user` set it approves at once (302 to
  ``redirect_uri?code=<code>&state=<state>``, not URL-encoded, like the real server);
  otherwise it shows a small sign-in form (``POST /permissions``) with Approve and Cancel.
  On Cancel nothing comes back to the app.
- ``POST /api/v1/auth/exchange``: ``code``, ``client_id``, ``client_secret``. A code works once.
- ``POST /api/v1/auth/refreshtoken``: ``refresh_token``, ``client_id``, ``client_secret``.
  Rotates both tokens: the old access and refresh tokens stop working at once.
- ``POST /api/v1/app/operations`` (body ``{"operations": [{"op_name": ...}, ...]}``) and
  ``POST /api/v1/app/broadcast`` (body ``{"transaction": {"operations": [[id, {...}]]}}``):
  ``Authorization: Bearer <access token>`` AND ``ClientID: <client id>``.

Like the real server, parameters are read from the body only (JSON or form-encoded, by
``Content-Type``); the query string is ignored, so a request that puts them there gets 400.
Answers are ``{"result": ..., "status": 200}`` or ``{"error": <message or {field: message}>,
"status": <code>}``; a route or method the server does not have gets 405.
"""

from __future__ import annotations

import hmac
import html
import json
import re
import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, quote

from .base import JSON_CONTENT_TYPE, FakeUpstreamBase, HandlerResult, json_response

DEFAULT_PEERID_CLIENT_ID = 42
DEFAULT_PEERID_CLIENT_SECRET = "fake-peerid-secret"  # noqa: S105 - a fake's
DEFAULT_PEERID_SCOPE: tuple[int, ...] = (0,)  # 0 is Peerplays' "transfer" operation
TOKEN_LENGTH = 124
CODE_LENGTH = 24

TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path
EXCHANGE_PATH = "/api/v1/auth/exchange"
REFRESH_PATH = "/api/v1/auth/refreshtoken"
OPERATIONS_PATH = "/api/v1/app/operations"
BROADCAST_PATH = "/api/v1/app/broadcast"
PERMISSIONS_PATH = "/permissions"

#: Peerplays operation ids by name (``ChainTypes.operations``), the ones the fake knows.
OPERATION_IDS: dict[str, int] = {
    "transfer": 0,
    "limit_order_create": 1,
    "limit_order_cancel": 2,
    "call_order_update": 3,
    "fill_order": 4,
    "account_create": 5,
    "account_update": 6,
    "account_whitelist": 7,
    "account_upgrade": 8,
    "account_transfer": 9,
    "asset_create": 10,
    "asset_update": 11,
    "asset_issue": 14,
}

INVALID_ACCESS_TOKEN = "Access Token invalid or expired"  # noqa: S105
INVALID_LOGIN = "Invalid email/username or password"

_ALPHANUMERIC = string.ascii_letters + string.digits  # what the real server's uid2 draws from
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_HTML = "text/html; charset=utf-8"


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def _iso(timestamp: float) -> str:
    """A JavaScript ``Date`` as JSON: ``2024-01-31T12:00:00.000Z``."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _positive(name: str, value: float | None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} is a positive number of seconds"
                         + (", or None" if optional else ""))


def _client_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("a client id is an integer")
    return value


def _peerid_error(status: int, error: Any, headers: Mapping[str, str] | None = None
                  ) -> HandlerResult:
    return json_response(status, {"error": error, "status": status}, headers)


def _ok(result: Any) -> HandlerResult:
    return json_response(200, {"result": result, "status": 200})


class _Invalid(Exception):
    """A 400 with field messages, like the real server's ``ValidateError``."""

    def __init__(self, fields: dict[str, str], status: int = 400) -> None:
        super().__init__(fields)
        self.fields = fields
        self.status = status

    def answer(self) -> HandlerResult:
        return _peerid_error(self.status, self.fields)


@dataclass
class _App:
    client_id: int
    client_secret: str
    scope: tuple[int, ...]


@dataclass
class _User:
    user_id: int
    login: str
    password: str | None
    email: str | None
    mobile: str | None


@dataclass
class _Code:
    grant_id: int
    app_id: int
    user_id: int
    scope: tuple[int, ...]
    expires: float | None


@dataclass
class _Row:
    """One row of the server's access-token table; a refresh rotates it in place."""

    id: int
    app_id: int
    user_id: int
    scope: tuple[int, ...]
    token: str
    refresh_token: str
    expires: float
    refresh_expires: float | None
    created: float
    grantcode_id: int | None
    refresh_revoked: bool = False


class FakePeerID(FakeUpstreamBase):
    """An in-memory PeerID server for tests and the demo.

    ``client_id`` / ``client_secret`` register the first app (:meth:`add_app` adds more);
    access tokens live ``access_lifetime`` seconds of the fake's clock, refresh tokens
    ``refresh_lifetime`` seconds (``None``: until rotated or revoked), codes
    ``code_lifetime`` seconds. ``scope`` is the app's Peerplays operation ids, echoed in
    token responses. Failure injection (:meth:`fail_with`, :meth:`delay`, :meth:`garbage`,
    :meth:`drop_connection`) applies to every route; ``fail_with`` answers PeerID-shaped
    error bodies (500: ``{"error": "server side error", "status": 500}``).
    """

    def __init__(
        self,
        client_id: int = DEFAULT_PEERID_CLIENT_ID,
        client_secret: str = DEFAULT_PEERID_CLIENT_SECRET,
        *,
        access_lifetime: float = 3600,
        refresh_lifetime: float | None = None,
        code_lifetime: float | None = 600,
        scope: Iterable[int] = DEFAULT_PEERID_SCOPE,
        latency: float = 0.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(latency=latency, clock=clock, sleep=sleep)
        _positive("access_lifetime", access_lifetime)
        _positive("refresh_lifetime", refresh_lifetime, optional=True)
        _positive("code_lifetime", code_lifetime, optional=True)
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.code_lifetime = code_lifetime
        #: The user the ``/permissions`` page approves for without asking; ``None``: ask.
        self.browser_user: int | None = None
        self._apps: dict[int, _App] = {}
        self._users: dict[int, _User] = {}
        self._codes: dict[str, _Code] = {}
        self._by_access: dict[str, _Row] = {}
        self._by_refresh: dict[str, _Row] = {}
        self._operations: list[dict[str, Any]] = []
        self._next_user_id = 101  # user ids never look like row ids or client ids
        self._next_row_id = 1
        self._next_grant_id = 1
        self._default_client_id = _client_id(client_id)
        self.add_app(client_id, client_secret, scope=scope)

    def __repr__(self) -> str:
        with self._lock:
            return (f"<FakePeerID url={self.url!r} client_id={self._default_client_id} "
                    f"apps={len(self._apps)} users={len(self._users)} "
                    f"tokens={len(self._by_access)}>")

    # Apps and users ---------------------------------------------------------------

    @property
    def client_id(self) -> int:
        """The first app's client id."""
        return self._default_client_id

    @property
    def client_secret(self) -> str:
        """The first app's client secret."""
        with self._lock:
            return self._apps[self._default_client_id].client_secret

    def add_app(self, client_id: int, client_secret: str, *,
                scope: Iterable[int] = DEFAULT_PEERID_SCOPE) -> None:
        """Register another app (or replace an app's secret and scope)."""
        client_id = _client_id(client_id)
        if not isinstance(client_secret, str) or not client_secret:
            raise ValueError("client_secret is a non-empty string")
        scope = tuple(scope)
        if not all(isinstance(op, int) and not isinstance(op, bool) for op in scope):
            raise ValueError("scope is Peerplays operation ids (integers)")
        with self._lock:
            self._apps[client_id] = _App(client_id, client_secret, scope)

    def add_user(self, login: str = "alice", password: str | None = "pw",  # noqa: S107
                 email: str | None = None, mobile: str | None = None) -> int:
        """A PeerID account; its ``user_id``. It signs in with ``login`` or ``email``."""
        if not isinstance(login, str) or not login:
            raise ValueError("login is a non-empty string")
        with self._lock:
            for user in self._users.values():
                taken = {user.login.lower(), (user.email or "").lower()}
                if login.lower() in taken or (email and email.lower() in taken):
                    raise ValueError("a PeerID user with this login or e-mail exists")
            user_id = self._next_user_id
            self._next_user_id += 1
            self._users[user_id] = _User(user_id, login, password, email, mobile)
            return user_id

    def user_id_for(self, login: str) -> int:
        """The ``user_id`` of ``login`` (username or e-mail); ``KeyError`` if none."""
        with self._lock:
            user = self._find_user(login)
        if user is None:
            raise KeyError(login)
        return user.user_id

    def _find_user(self, login: str) -> _User | None:
        for user in self._users.values():
            if login == user.login or (user.email and login.lower() == user.email.lower()):
                return user
        return None

    # Tokens and codes ---------------------------------------------------------------

    def issue_tokens(self, user_id: int, client_id: int | None = None) -> dict[str, Any]:
        """Tokens for ``user_id`` and an app (default: the first), as a sign-in would give:
        the ``result`` of the token response."""
        with self._lock:
            app = self._app(client_id)
            if user_id not in self._users:
                raise KeyError(user_id)
            return self._result(self._new_row(app, user_id, app.scope, None))

    def issue_code(self, user_id: int, client_id: int | None = None) -> str:
        """An authorization code, as approving on ``/permissions`` would give."""
        with self._lock:
            app = self._app(client_id)
            if user_id not in self._users:
                raise KeyError(user_id)
            code = _random(CODE_LENGTH)
            expires = None if self.code_lifetime is None else self.now() + self.code_lifetime
            self._codes[code] = _Code(self._next_grant_id, app.client_id, user_id, app.scope,
                                      expires)
            self._next_grant_id += 1
            return code

    def expire_access_token(self, token: str) -> None:
        """The access token gets 401 from now on (its refresh token still works)."""
        with self._lock:
            row = self._by_access.get(token)
            if row is None:
                raise KeyError("no such access token")
            row.expires = min(row.expires, self.now())

    def expire_all_access_tokens(self) -> None:
        """Every access token issued so far gets 401 from now on."""
        with self._lock:
            now = self.now()
            for row in self._by_access.values():
                row.expires = min(row.expires, now)

    def revoke_refresh_token(self, token: str) -> None:
        """Refreshing with this token gets 400 from now on."""
        with self._lock:
            row = self._by_refresh.get(token)
            if row is None:
                raise KeyError("no such refresh token")
            row.refresh_revoked = True

    def access_token_valid(self, token: str, client_id: int | None = None) -> bool:
        """Whether the token calls would accept ``token`` for the app."""
        with self._lock:
            return self._live_row(token, self._app(client_id).client_id) is not None

    def refresh_token_valid(self, token: str, client_id: int | None = None) -> bool:
        """Whether a refresh with ``token`` for the app would succeed."""
        with self._lock:
            return self._refreshable(token, self._app(client_id).client_id) is not None

    @property
    def operations_received(self) -> list[dict[str, Any]]:
        """What the token routes accepted: ``{"path", "user_id", "app_id", "body"}``."""
        with self._lock:
            return [dict(entry) for entry in self._operations]

    def _app(self, client_id: int | None) -> _App:
        key = self._default_client_id if client_id is None else client_id
        app = self._apps.get(key)
        if app is None:
            raise KeyError(f"no app with client id {key}")
        return app

    def _new_row(self, app: _App, user_id: int, scope: tuple[int, ...],
                 grant_id: int | None) -> _Row:
        now = self.now()
        row = _Row(
            id=self._next_row_id, app_id=app.client_id, user_id=user_id, scope=scope,
            token=self._unique(self._by_access), refresh_token=self._unique(self._by_refresh),
            expires=now + self.access_lifetime,
            refresh_expires=None if self.refresh_lifetime is None
            else now + self.refresh_lifetime,
            created=now, grantcode_id=grant_id,
        )
        self._next_row_id += 1
        self._by_access[row.token] = row
        self._by_refresh[row.refresh_token] = row
        return row

    @staticmethod
    def _unique(taken: Mapping[str, Any]) -> str:
        while True:
            token = _random(TOKEN_LENGTH)
            if token not in taken:
                return token

    def _rotate(self, row: _Row) -> None:
        del self._by_access[row.token]
        del self._by_refresh[row.refresh_token]
        now = self.now()
        row.token = self._unique(self._by_access)
        row.refresh_token = self._unique(self._by_refresh)
        row.expires = now + self.access_lifetime
        if self.refresh_lifetime is not None:
            row.refresh_expires = now + self.refresh_lifetime
        self._by_access[row.token] = row
        self._by_refresh[row.refresh_token] = row

    def _live_row(self, token: str, app_id: int) -> _Row | None:
        row = self._by_access.get(token)
        if row is None or row.app_id != app_id or self.now() >= row.expires:
            return None
        return row

    def _refreshable(self, token: str, app_id: int) -> _Row | None:
        row = self._by_refresh.get(token)
        if row is None or row.app_id != app_id or row.refresh_revoked:
            return None
        if row.refresh_expires is not None and self.now() >= row.refresh_expires:
            return None
        return row

    @staticmethod
    def _result(row: _Row) -> dict[str, Any]:
        return {
            "id": row.id,
            "token": row.token,
            "refresh_token": row.refresh_token,
            "expires": _iso(row.expires),
            "scope": list(row.scope),
            "app_id": row.app_id,
            "user_id": row.user_id,
            "grantcode_id": row.grantcode_id,
            "created": _iso(row.created),
        }

    # Failure injection -------------------------------------------------------------

    def fail_with(self, status: int, body: bytes | str | Any = None, count: int | None = 1,
                  *, path: str | None = None, content_type: str = JSON_CONTENT_TYPE,
                  headers: Mapping[str, str] | None = None) -> None:
        """Like :meth:`FakeUpstreamBase.fail_with`, with PeerID's error body by default:
        ``{"error": "server side error", "status": 500}`` for a 500."""
        if body is None and 100 <= status <= 599:
            if status == 500:
                message = "server side error"
            elif status == 401:
                message = INVALID_ACCESS_TOKEN
            else:
                try:
                    message = HTTPStatus(status).phrase
                except ValueError:
                    message = f"HTTP {status}"
            body = {"error": message, "status": status}
        super().fail_with(status, body, count, path=path, content_type=content_type,
                          headers=headers)

    # Serving -----------------------------------------------------------------------

    def route(self, method: str, path: str, query: str, headers: Mapping[str, str],
              body: bytes) -> HandlerResult:
        """Answer one request (see the module docstring for the routes)."""
        if path == PERMISSIONS_PATH and method in ("GET", "HEAD"):
            return self._permissions_page(dict(parse_qsl(query, keep_blank_values=True)))
        if method != "POST":
            return self._not_allowed()
        routes = {
            TOKEN_PATH: self._token,
            EXCHANGE_PATH: self._exchange,
            REFRESH_PATH: self._refresh,
            PERMISSIONS_PATH: self._permissions_form,
        }
        if path in routes:
            params = _body_params(headers, body)
            if params is None:
                return _peerid_error(400, "the body could not be parsed")
            try:
                return routes[path](params)
            except _Invalid as invalid:
                return invalid.answer()
        if path in (OPERATIONS_PATH, BROADCAST_PATH):
            return self._token_call(path, headers, body)
        return self._not_allowed()

    @staticmethod
    def _not_allowed() -> HandlerResult:
        return _peerid_error(405, "Method not allowed")

    # /api/v1/auth/* ------------------------------------------------------------------

    def _token(self, params: dict[str, Any]) -> HandlerResult:
        """``POST /api/v1/auth/token``: the password (ROPC) flow."""
        fields = _validate(params, {"login": _STRING, "password": _OPTIONAL_STRING,
                                    "mobile": _OPTIONAL_STRING, "client_id": _INT})
        login, password, mobile = fields["login"], fields.get("password"), fields.get("mobile")
        with self._lock:
            user = self._find_user(login)
            if user is None:
                raise _Invalid({"login": "User not found"})
            if password is None and mobile is None:
                message = "Either mobile or password is required"
                raise _Invalid({"mobile": message, "password": message})
            app = self._apps.get(fields["client_id"])
            if app is None:
                raise _Invalid({"client_id": "App does not exist"})
            # Every credential given must match (both when both are given).
            ok = True
            if password is not None:
                ok = user.password is not None and _same(password, user.password)
            if mobile is not None:
                ok = ok and user.mobile is not None and _same(mobile, user.mobile)
            if not ok:
                raise _Invalid({"login": INVALID_LOGIN})
            return _ok(self._result(self._new_row(app, user.user_id, app.scope, None)))

    def _authenticated_app(self, fields: Mapping[str, Any]) -> _App:
        app = self._apps.get(fields["client_id"])
        if app is None or not _same(fields["client_secret"], app.client_secret):
            raise _Invalid({"client_id": "client_id or client_secret invalid"})
        return app

    def _exchange(self, params: dict[str, Any]) -> HandlerResult:
        """``POST /api/v1/auth/exchange``: a code (once) for tokens."""
        fields = _validate(params, {"code": _STRING, "client_id": _INT,
                                    "client_secret": _STRING})
        with self._lock:
            app = self._authenticated_app(fields)
            grant = self._codes.get(fields["code"])
            if grant is not None and grant.expires is not None and self.now() >= grant.expires:
                del self._codes[fields["code"]]
                grant = None
            if grant is None:
                raise _Invalid({"code": "invalid code"})
            if grant.app_id != app.client_id:
                raise _Invalid({"code": "code doesn't belong to this app"})
            del self._codes[fields["code"]]
            row = self._new_row(app, grant.user_id, grant.scope, grant.grant_id)
            return _ok(self._result(row))

    def _refresh(self, params: dict[str, Any]) -> HandlerResult:
        """``POST /api/v1/auth/refreshtoken``: rotate both tokens of the row."""
        fields = _validate(params, {"refresh_token": _STRING, "client_id": _INT,
                                    "client_secret": _STRING})
        with self._lock:
            app = self._authenticated_app(fields)
            row = self._refreshable(fields["refresh_token"], app.client_id)
            if row is None:
                raise _Invalid({"refresh_token": "invalid refresh token"})
            self._rotate(row)
            return _ok(self._result(row))

    # Token-protected routes ----------------------------------------------------------

    def _token_call(self, path: str, headers: Mapping[str, str], body: bytes
                    ) -> HandlerResult:
        """``/api/v1/app/operations`` and ``/broadcast``: Bearer token AND ClientID header.

        As in the real server: either header missing is 401 ``unauthorized``; a token that
        is unknown, expired, rotated away or issued for another app than ``ClientID`` is
        401 ``Access Token invalid or expired``; then the body is validated (400).
        """
        authorization, client_header = headers.get("authorization"), headers.get("clientid")
        if not authorization or not client_header:
            return _peerid_error(401, "unauthorized")
        scheme, _sep, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            return _peerid_error(401, "Authorization invalid")
        client_header = client_header.strip()
        with self._lock:
            row = (self._live_row(token, int(client_header))
                   if _INTEGER.fullmatch(client_header) else None)
            if row is None:
                return _peerid_error(401, INVALID_ACCESS_TOKEN)
            user_id, app_id, scope = row.user_id, row.app_id, row.scope
        params = _body_params(headers, body)
        if params is None:
            return _peerid_error(400, "the body could not be parsed")
        try:
            if path == OPERATIONS_PATH:
                result: Any = _operations(params, scope)
            else:
                result = _broadcast(params, scope)
        except _Invalid as invalid:
            return invalid.answer()
        with self._lock:
            self._operations.append({"path": path, "user_id": user_id, "app_id": app_id,
                                     "body": params})
        return _ok(result)

    # The browser page --------------------------------------------------------------

    def _permissions_page(self, query: Mapping[str, str]) -> HandlerResult:
        """``GET /permissions``: approve for :attr:`browser_user`, or show the form."""
        with self._lock:
            problem, app = self._check_authorize(query)
            if problem:
                return _page(400, "PeerID: cannot authorize", f"<p>{html.escape(problem)}</p>")
            assert app is not None  # noqa: S101 - no problem means an app
            browser_user = self.browser_user
            if browser_user is not None and browser_user in self._users:
                return self._approve(browser_user, app, query)
        return _page(200, "PeerID: authorize the app", _form(app.client_id, query))

    def _permissions_form(self, params: dict[str, Any]) -> HandlerResult:
        """``POST /permissions`` (the fake's own form): sign in and approve, or cancel."""
        fields = {key: value for key, value in params.items() if isinstance(value, str)}
        with self._lock:
            problem, app = self._check_authorize(fields)
            if problem:
                return _page(400, "PeerID: cannot authorize", f"<p>{html.escape(problem)}</p>")
            assert app is not None  # noqa: S101 - no problem means an app
            if fields.get("action") == "cancel":
                return _page(200, "PeerID: cancelled",
                             "<p>You did not authorize the app. You can close this page.</p>")
            user = self._find_user(fields.get("login", ""))
            password = fields.get("password", "")
            if user is None or user.password is None or not _same(password, user.password):
                return _page(400, "PeerID: authorize the app",
                             f"<p class=error>{INVALID_LOGIN}</p>"
                             + _form(app.client_id, fields))
            return self._approve(user.user_id, app, fields)

    def _check_authorize(self, query: Mapping[str, Any]) -> tuple[str | None, _App | None]:
        raw_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
        if not isinstance(raw_id, str) or not _INTEGER.fullmatch(raw_id):
            return "client_id is missing or not a number", None
        app = self._apps.get(int(raw_id))
        if app is None:
            return "App does not exist", None
        if not isinstance(redirect_uri, str) or not re.match(r"https?://[^/?#\s]+", redirect_uri):
            return "redirect_uri must be an absolute http(s) URL", None
        if not isinstance(query.get("state", ""), str):
            return "state is a string", None
        return None, app

    def _approve(self, user_id: int, app: _App, query: Mapping[str, str]) -> HandlerResult:
        code = self.issue_code(user_id, app.client_id)
        # Not URL-encoded, like the real server; only what no header may hold is escaped.
        state = _header_safe(query.get("state", ""))
        location = f"{_header_safe(query['redirect_uri'])}?code={code}&state={state}"
        return 302, {"Location": location, "Content-Type": _HTML}, b""


# Body parameters and validation -------------------------------------------------------

def _body_params(headers: Mapping[str, str], body: bytes) -> dict[str, Any] | None:
    """The parameters in the body, by Content-Type (JSON or form); ``None`` if unreadable.

    Any other or no Content-Type gives no parameters, as with the real server's parsers.
    """
    content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else {}
    if content_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return None
        params: dict[str, Any] = {}
        for key, value in pairs:
            if key in params:  # a repeated key becomes a list, which no field accepts
                previous = params[key]
                params[key] = [*previous, value] if isinstance(previous, list) \
                    else [previous, value]
            else:
                params[key] = value
        return params
    return {}


_STRING, _OPTIONAL_STRING, _INT = "string", "optional string", "integer"


def _validate(params: Mapping[str, Any], schema: Mapping[str, str]) -> dict[str, Any]:
    """Check every field like the real server's Joi schemas; 400 with all field errors."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, kind in schema.items():
        value = params.get(key)
        if value is None:
            if kind != _OPTIONAL_STRING:
                errors[key] = f'"{key}" is required'
            continue
        if kind == _INT:
            if isinstance(value, int) and not isinstance(value, bool):
                values[key] = value
            elif isinstance(value, float) and value.is_integer():
                values[key] = int(value)
            elif isinstance(value, str) and _INTEGER.fullmatch(value):
                values[key] = int(value)  # "42" from a form is accepted, as Joi converts it
            else:
                errors[key] = f'"{key}" must be an integer'
        elif not isinstance(value, str):
            errors[key] = f'"{key}" must be a string'
        elif not value:
            errors[key] = f'"{key}" is not allowed to be empty'
        else:
            values[key] = value
    if errors:
        raise _Invalid(errors)
    return values


def _operations(params: Mapping[str, Any], scope: tuple[int, ...]) -> list[dict[str, Any]]:
    operations = params.get("operations")
    if not isinstance(operations, list) or not operations or not all(
            isinstance(op, dict) and isinstance(op.get("op_name"), str) for op in operations):
        raise _Invalid({"operations": '"operations" must be a list of {"op_name": ...}'})
    echoed = []
    for op in operations:
        op_id = OPERATION_IDS.get(op["op_name"])
        if op_id is None or op_id not in scope:
            raise _Invalid({"op_name": "Operation invalid"})
        echoed.append({**op, "id": op_id})
    return echoed


def _broadcast(params: Mapping[str, Any], scope: tuple[int, ...]) -> dict[str, Any]:
    transaction = params.get("transaction")
    operations = transaction.get("operations") if isinstance(transaction, dict) else None
    if not isinstance(operations, list) or not operations or not all(
            isinstance(op, list) and len(op) == 2 and isinstance(op[0], int)
            and isinstance(op[1], dict) for op in operations):
        raise _Invalid({"transaction": '"transaction" must have "operations": [[id, {...}]]'})
    if not all(op[0] in scope for op in operations):
        raise _Invalid({"operations": "operations invalid"})
    return {"id": secrets.token_hex(20), "block_num": secrets.randbelow(10**7),
            "trx_num": 0, "trx": transaction}


# HTML --------------------------------------------------------------------------------

def _header_safe(value: str) -> str:
    """Escape only what a header or URL can never hold: controls, spaces, non-ASCII."""
    return quote(value, safe="".join(chr(c) for c in range(0x21, 0x7F)))


def _page(status: int, title: str, content: str) -> HandlerResult:
    body = (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}"
            f"</title></head><body><h1>{html.escape(title)}</h1>{content}</body></html>")
    return status, {"Content-Type": _HTML}, body.encode()


def _form(client_id: int, query: Mapping[str, Any]) -> str:
    hidden = "".join(
        f'<input type=hidden name={name} value="{html.escape(str(query.get(name, "")))}">'
        for name in ("client_id", "redirect_uri", "state")
    )
    login = html.escape(str(query.get("login", "")))
    return (
        f"<p>App {client_id} asks to act on your behalf. Sign in to approve.</p>"
        f'<form method=post action="">{hidden}'
        f'<label>Username or e-mail <input name=login value="{login}"></label> '
        "<label>Password <input name=password type=password></label> "
        "<button name=action value=approve>Approve</button> "
        "<button name=action value=cancel formnovalidate>Cancel</button></form>"
    )
