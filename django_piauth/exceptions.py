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


class DatabaseBusy(UpstreamUnavailable):
    """Our own database could not take a write in time (SQLite: "database is locked",
    still so after retries): answered like an outage, 503 with ``Retry-After``."""


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


class PaymentError(UpstreamError):
    """The Pi Platform refused a payment call with a documented error code.

    ``payment`` is the ``PaymentDTO`` its error body carried, when it carried one.
    Subclasses name the codes the payment routes document; another code is a plain
    ``PaymentError`` with that ``code``.
    """

    error_code: str | None = None

    def __init__(self, message: str, *, status: int, code: str | None = None,
                 body: object = None, payment: object = None) -> None:
        super().__init__(message, status=status, code=code, body=body)
        self.payment = payment


class PaymentNotFound(PaymentError):
    """``payment_not_found``: the platform knows no payment with this id."""

    error_code = "payment_not_found"


class PaymentAlreadyApproved(PaymentError):
    """``already_approved``."""

    error_code = "already_approved"


class PaymentAlreadyCompleted(PaymentError):
    """``already_completed``."""

    error_code = "already_completed"


class PaymentCancelled(PaymentError):
    """``cancelled_payment``: the Pioneer or the app cancelled it."""

    error_code = "cancelled_payment"


class TxidMismatch(PaymentError):
    """``txid_mismatch``: the txid is not the payment's transaction."""

    error_code = "txid_mismatch"


class TransactionNotVerified(PaymentError):
    """``not_verified``: the blockchain transaction is not verified yet."""

    error_code = "not_verified"


class OngoingPaymentFound(PaymentError):
    """``ongoing_payment_found``: the Pioneer has an unfinished app-to-user payment."""

    error_code = "ongoing_payment_found"


class PiUserNotFound(PaymentError):
    """``user_not_found``: no Pioneer with this uid uses the app."""

    error_code = "user_not_found"


class MissingScope(PaymentError):
    """``missing_scope``: the Pioneer did not grant the ``payments`` scope."""

    error_code = "missing_scope"


#: Documented error code -> its exception class.
PAYMENT_ERRORS: dict[str, type[PaymentError]] = {
    cls.error_code: cls
    for cls in (PaymentNotFound, PaymentAlreadyApproved, PaymentAlreadyCompleted,
                PaymentCancelled, TxidMismatch, TransactionNotVerified, OngoingPaymentFound,
                PiUserNotFound, MissingScope)
    if cls.error_code is not None
}


class PaymentRequestError(PiAuthError):
    """A payment call refused for what the caller asked: the views answer ``status``
    with ``{"detail": str(exc), "code": exc.code}``."""

    status = 400

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class PaymentInputInvalid(PaymentRequestError, ValueError):
    """400: a payment id that is not a plain path segment, a missing or malformed txid."""


class PaymentForbidden(PaymentRequestError):
    """403: another Pioneer's payment (``not_yours``), an app-to-user payment
    (``not_user_to_app``), or a payment whose uid no Pioneer of the app has
    (``unknown_pioneer``)."""

    status = 403


class PaymentConflict(PaymentRequestError):
    """409: the payment's state does not allow the step. ``code`` says which:
    ``cancelled``, ``completed``, ``not_approved``, ``in_progress``, ``refused``,
    ``transaction_pending``, ``transaction_exists``, ``txid_mismatch``, or the code of
    another platform refusal."""

    status = 409


class PaymentRefused(PiAuthError):
    """Raised by ``PaymentHandler.check`` to refuse a payment; ``reason`` is shown to the
    caller (409 ``refused``), so keep it for the Pioneer's eyes."""

    def __init__(self, reason: str = "The app refused this payment.") -> None:
        super().__init__(reason)
        self.reason = reason
