"""The three outcomes of asking upstream: yes (a value), no (:class:`InvalidToken`),
and cannot say (:class:`UpstreamUnavailable`).

Messages never carry a token, a key or a client secret.
"""

from __future__ import annotations


class PiAuthError(Exception):
    """Base class of every error django-piauth raises."""


class InvalidToken(PiAuthError):
    """Upstream (or our own format check) says no: the token does not identify anybody."""


class MalformedToken(InvalidToken):
    """The token was refused before any upstream call: empty, oversized or not printable ASCII."""


class IdentityRejected(InvalidToken):
    """Upstream verified the token, but the backend's ``verify_identity`` hook refused it."""


class UserInactive(InvalidToken):
    """The identity is linked to a user who may not sign in (``is_active`` is false)."""


class InvalidCredentials(InvalidToken):
    """PeerID refused the login and password (or mobile), or the authorization code."""


class WrongApp(InvalidToken):
    """The PeerID token was issued for another app (its ``app_id`` is not our client id)."""


class RefreshTokenDead(InvalidToken):
    """PeerID refused the refresh token: the user must sign in again."""


class AccessTokenRejected(InvalidToken):
    """PeerID answered 401 to a call made with the access token."""


class PeerIDSessionEnded(PiAuthError):  # an outcome, like Http404
    """The session's PeerID credential is gone, revoked, or its refresh token is dead:
    the user must sign in again (the middleware and DRF class sign them out)."""


class UpstreamUnavailable(PiAuthError):
    """Upstream could not say: timeout, connection error, 5xx, or a body of the wrong shape.

    Says nothing about the token; callers answer 503 with ``Retry-After``.
    """

    def __init__(self, message: str, *, service: str = "upstream") -> None:
        super().__init__(message)
        self.service = service


class UpstreamError(PiAuthError):
    """Upstream answered a server-side call with a documented error (a 4xx with an error code)."""

    def __init__(self, message: str, *, status: int, code: str | None = None,
                 body: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body


class SafeAuthorizationDenied(PiAuthError):
    """The person at the SAFE Launcher denied the app's authorization request (401)."""


class SafeNotAuthorized(PiAuthError):
    """There is no usable SAFE grant: ``manage.py piauth_safe_authorize`` must run first.

    Raised at once by authorised SAFE calls (they never wait for a person).
    """

    command = "piauth_safe_authorize"


class SafeGrantDead(SafeNotAuthorized):
    """The SAFE Launcher refused the stored token (401): revoked, the app removed, or the
    Launcher restarted. The grant is marked dead; authorize again."""
