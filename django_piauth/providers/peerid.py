"""PeerID (Peerplays) client: password and authorization-code sign-in, refresh, and calls
made with a user's access token. Plain HTTP, no models.

The server reads parameters from the body only, so they always travel in a JSON body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard
from urllib.parse import urlencode

from django.core.exceptions import ImproperlyConfigured

from ..conf import built_from_settings, default_deadline, piauth_settings
from ..exceptions import (
    AccessTokenRejected,
    InvalidCredentials,
    InvalidToken,
    RefreshTokenDead,
    UpstreamError,
    UpstreamUnavailable,
    WrongApp,
)

__all__ = ["AccessTokenRejected", "InvalidCredentials", "PeerIDClient", "PeerIDIdentity",
           "PeerIDTokens", "RefreshTokenDead", "WrongApp", "get_peerid_client"]
from .http import UpstreamResponse, join_url, send

SERVICE = "PeerID"


@dataclass(frozen=True)
class PeerIDTokens:
    """A token response. The tokens are kept out of ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    user_id: int
    app_id: int
    expires_at: datetime | None
    scope: tuple[int, ...] = ()


def _error_message(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return "; ".join(f"{key}: {value}" for key, value in error.items())
    return str(error) if error else "no reason given"


def _is_int(value: object) -> TypeGuard[int]:
    """An int, and not a bool (JSON's true is no id)."""
    return isinstance(value, int) and not isinstance(value, bool)


def parse_tokens(payload: Any, client_id: int) -> PeerIDTokens:
    """Read a token response, or raise ``UpstreamUnavailable`` (shape) / ``WrongApp``."""
    result = payload.get("result") if isinstance(payload, dict) else None
    if not isinstance(result, dict):
        raise UpstreamUnavailable(f"{SERVICE} answered a token response without a result",
                                  service=SERVICE)
    access, refresh = result.get("token"), result.get("refresh_token")
    user_id, app_id = result.get("user_id"), result.get("app_id")
    if not (isinstance(access, str) and access and isinstance(refresh, str)):
        raise UpstreamUnavailable(f"{SERVICE} answered a token response without tokens",
                                  service=SERVICE)
    if not (_is_int(user_id) and _is_int(app_id)):
        raise UpstreamUnavailable(f"{SERVICE} answered a token response without user_id or "
                                  "app_id", service=SERVICE)
    if app_id != client_id:
        raise WrongApp(f"the PeerID token was issued for app {app_id}, not {client_id}")
    expires_at = None
    expires = result.get("expires")
    if isinstance(expires, str):
        try:
            expires_at = datetime.fromisoformat(expires)
        except ValueError:
            raise UpstreamUnavailable(f"{SERVICE} answered an unreadable expiry date",
                                      service=SERVICE) from None
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
    scope = result.get("scope")
    scopes = tuple(s for s in scope if isinstance(s, int)) if isinstance(scope, list) else ()
    return PeerIDTokens(access_token=access, refresh_token=refresh, user_id=user_id,
                        app_id=app_id, expires_at=expires_at, scope=scopes)


@dataclass(frozen=True)
class PeerIDIdentity:
    """Who a PeerID token response vouches for; ``uid`` is PeerID's ``user_id``."""

    uid: str
    username: str | None = None
    scopes: tuple[int, ...] = ()
    provider: str = field(default="peerid", init=False)

    @classmethod
    def from_tokens(cls, tokens: PeerIDTokens, login: str | None = None) -> PeerIDIdentity:
        # The token response has no username; a login that is not an e-mail address is
        # the best name we have (never an address: it would show up as a username).
        username = login if login and "@" not in login else None
        return cls(uid=str(tokens.user_id), username=username, scopes=tokens.scope)


class PeerIDClient:
    """One PeerID app's client. The client secret stays out of ``repr`` and messages."""

    def __init__(self, base_url: str, *, client_id: int, client_secret: str | None = None,
                 timeout: tuple[float, float] = (3.0, 5.0), deadline: float | None = None,
                 max_response_bytes: int = 256 * 1024) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.timeout = timeout
        #: Seconds a whole call may take (``CALL_DEADLINE``).
        self.deadline = deadline if deadline is not None else default_deadline(timeout)
        self.max_response_bytes = max_response_bytes

    def __repr__(self) -> str:
        secret = "set" if self._client_secret else "not set"
        return f"<PeerIDClient {self.base_url} client_id={self.client_id} secret={secret}>"

    def _post(self, path: str, body: dict[str, Any],
              headers: dict[str, str] | None = None) -> UpstreamResponse:
        response = send(
            "POST", join_url(self.base_url, path), service=SERVICE,
            headers={"Accept": "application/json", **(headers or {})},
            json_body=body, timeout=self.timeout, deadline=self.deadline,
            max_bytes=self.max_response_bytes,
        )
        if response.cannot_say:
            raise UpstreamUnavailable(f"{SERVICE} {path} answered {response.status}",
                                      service=SERVICE)
        return response

    def _secret(self) -> str:
        if not self._client_secret:
            raise ImproperlyConfigured(
                "PIAUTH['PEERID_CLIENT_SECRET'] is not set; the code exchange and refresh "
                "need it."
            )
        return self._client_secret

    def _tokens(self, path: str, body: dict[str, Any],
                refused: type[InvalidToken]) -> PeerIDTokens:
        response = self._post(path, body)
        if response.status == 200:
            return parse_tokens(response.json(), self.client_id)
        if response.status in (400, 401):
            payload = response.json() if response.body else None
            raise refused(f"{SERVICE} refused it: {_error_message(payload)}")
        raise UpstreamUnavailable(f"{SERVICE} {path} answered {response.status}",
                                  service=SERVICE)

    # Sign-in ------------------------------------------------------------------------

    def password_grant(self, login: str, password: str | None = None,
                       mobile: str | None = None) -> PeerIDTokens:
        """The password credentials flow: ``login`` with ``password`` and/or ``mobile``."""
        if not password and not mobile:
            raise ValueError("a password or a mobile number is needed")
        body: dict[str, Any] = {"login": login, "client_id": self.client_id}
        if password:
            body["password"] = password
        if mobile:
            body["mobile"] = mobile
        return self._tokens("/api/v1/auth/token", body, InvalidCredentials)

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """Where to send the browser for the authorization-code flow."""
        query = urlencode({"client_id": self.client_id, "redirect_uri": redirect_uri,
                           "state": state})
        return f"{join_url(self.base_url, '/permissions')}?{query}"

    def exchange_code(self, code: str) -> PeerIDTokens:
        body = {"code": code, "client_id": self.client_id, "client_secret": self._secret()}
        return self._tokens("/api/v1/auth/exchange", body, InvalidCredentials)

    def refresh(self, refresh_token: str) -> PeerIDTokens:
        """New access AND refresh tokens; the old ones stop working at once."""
        body = {"refresh_token": refresh_token, "client_id": self.client_id,
                "client_secret": self._secret()}
        return self._tokens("/api/v1/auth/refreshtoken", body, RefreshTokenDead)

    # Calls made with the user's access token ---------------------------------------------

    def call(self, path: str, access_token: str, body: dict[str, Any]) -> Any:
        """``POST`` to a token-protected route; 401 raises ``AccessTokenRejected``."""
        response = self._post(path, body, headers={
            "Authorization": f"Bearer {access_token}",
            "ClientID": str(self.client_id),
        })
        if response.status == 401:
            raise AccessTokenRejected(f"{SERVICE} rejected the access token")
        payload = response.json()
        if response.status != 200:
            raise UpstreamError(f"{SERVICE} {path} answered {response.status}: "
                                f"{_error_message(payload)}", status=response.status,
                                body=payload)
        if not isinstance(payload, dict) or "result" not in payload:
            raise UpstreamUnavailable(f"{SERVICE} {path} answered 200 without a result",
                                      service=SERVICE)
        return payload["result"]

    def operations(self, access_token: str, operations: list[dict[str, Any]]) -> Any:
        return self.call("/api/v1/app/operations", access_token, {"operations": operations})

    def broadcast(self, access_token: str, body: dict[str, Any]) -> Any:
        return self.call("/api/v1/app/broadcast", access_token, body)


def _build_client() -> PeerIDClient:
    client_id = piauth_settings.PEERID_CLIENT_ID
    if client_id is None:
        raise ImproperlyConfigured("PIAUTH['PEERID_CLIENT_ID'] is not set; PeerID sign-in "
                                   "needs the app's PeerID client id.")
    return PeerIDClient(
        piauth_settings.PEERID_URL,
        client_id=client_id,
        client_secret=piauth_settings.PEERID_CLIENT_SECRET,
        timeout=piauth_settings.timeout,
        deadline=piauth_settings.deadline,
        max_response_bytes=piauth_settings.MAX_RESPONSE_BYTES,
    )


#: The client built from ``PIAUTH``; rebuilt when the settings change.
get_peerid_client = built_from_settings(_build_client)
