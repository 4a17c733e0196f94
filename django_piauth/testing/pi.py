"""A fake Pi Platform API: ``/v2/me``, the Server API Key payment routes, and stand-ins
for the frontend SDK (``Pi.authenticate``, ``Pi.createPayment`` and the Pioneer's wallet).

The Pi Platform API (what a server calls):

- ``GET /v2/me`` with ``Authorization: Bearer <access token>``: the Pioneer, else 401.
- With ``Authorization: Key <Server API Key>`` (else 401): ``GET /v2/payments/{id}``,
  ``POST /v2/payments/{id}/approve``, ``.../complete`` (body ``{"txid": ...}``),
  ``.../cancel``, ``POST /v2/payments`` (an app-to-user payment) and
  ``GET /v2/payments/incomplete_server_payments``.

DEMO ONLY, what the Pi SDK does in the Pi Browser: ``/_fake/...`` routes, POST with a
JSON body, CORS open to any origin (preflight answered), never hit by injected failures.
Errors are ``{"error", "error_message"}``; a malformed body is 400. The three payment
routes act for the Pioneer of ``accessToken`` (a token from ``/_fake/authenticate`` or
:meth:`FakePiPlatform.issue_token`): 401 ``invalid_token`` when it is unknown, expired or
revoked, 403 ``missing_scope`` when it lacks the ``payments`` scope.

- ``POST /_fake/authenticate`` ``{"username", "scopes"?}``: ``Pi.authenticate``, a new
  access token: ``{"accessToken", "user": {"uid", "username"}}``.
- ``POST /_fake/create_payment`` ``{"accessToken", "amount", "memo"?, "metadata"?}``:
  ``Pi.createPayment``, a user-to-app payment of the token's Pioneer (amount positive,
  at most 7 decimal places; metadata an object): ``{"identifier"}``. 409
  ``ongoing_payment_found`` (with ``payment``) while the Pioneer has an unfinished one:
  the SDK hands that one to ``onIncompletePaymentFound`` first.
- ``POST /_fake/sign_transaction`` ``{"accessToken", "paymentId"}``: the Pioneer signs
  the blockchain transaction in the wallet (a verified one, as
  :meth:`FakePiPlatform.submit_transaction` makes): ``{"txid"}``, the same txid when
  asked again. Only the token's own payment (403 ``not_yours``; 404 unknown), once the
  app's server approved it (409 ``not_approved``), never a cancelled or completed one
  (409 ``cancelled_payment`` / ``already_completed``).
- ``POST /_fake/incomplete_payment`` ``{"accessToken"}``: what ``Pi.authenticate`` hands
  ``onIncompletePaymentFound``: ``{"payment": <PaymentDTO>}``, the token's Pioneer's
  oldest unfinished user-to-app payment (not completed, not cancelled), or
  ``{"payment": null}``.

All state lives in memory behind a lock; serve it with
:func:`~django_piauth.testing.responses_adapter.serve_with_responses` or
:class:`~django_piauth.testing.server.LoopbackServer`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from .base import FakeUpstreamBase, HandlerResult, json_response

MeShape = Literal["official", "user"]
ME_SHAPES: tuple[MeShape, ...] = ("official", "user")
DEFAULT_SCOPES: tuple[str, ...] = ("username", "payments")
DEFAULT_SERVER_API_KEY = "fake-server-api-key"
AUTHENTICATE_PATH = "/_fake/authenticate"
CREATE_PAYMENT_PATH = "/_fake/create_payment"
SIGN_TRANSACTION_PATH = "/_fake/sign_transaction"
INCOMPLETE_PAYMENT_PATH = "/_fake/incomplete_payment"

_CORS = {"Access-Control-Allow-Origin": "*"}
_PREFLIGHT = {
    **_CORS,
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}
_PAYMENT_ID = r"(?P<id>[A-Za-z0-9_-]{1,128})"
_PAYMENT_ROUTE = re.compile(rf"/v2/payments/{_PAYMENT_ID}")
_PAYMENT_ACTION_ROUTE = re.compile(
    rf"/v2/payments/{_PAYMENT_ID}/(?P<action>approve|complete|cancel)"
)
_ID_ALPHABET = string.ascii_letters + string.digits
_MAX_USERNAME = 64
_MAX_MEMO = 1000
_MAX_TOKEN = 512
#: The places of a Pi amount the platform keeps (a PaymentDTO's amount has at most 7).
_AMOUNT_PLACES = 7


@dataclass
class _Grant:
    uid: str
    scopes: tuple[str, ...]
    valid_until: int
    revoked: bool = False


@dataclass
class _Payment:
    identifier: str
    user_uid: str
    amount: Decimal
    memo: str
    metadata: Any
    from_address: str
    to_address: str
    direction: str
    created_at: str
    network: str
    developer_approved: bool = False
    transaction_verified: bool = False
    developer_completed: bool = False
    cancelled: bool = False
    user_cancelled: bool = False
    transaction: dict[str, Any] | None = field(default=None)

    @property
    def finished(self) -> bool:
        return self.developer_completed or self.cancelled or self.user_cancelled


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _random_id(length: int = 28) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _crc16_xmodem(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def stellar_address(public_key: bytes | None = None) -> str:
    """A valid account id (StrKey ``G...``, checksum included) for an ed25519 public key
    (random if none): what stellar-sdk accepts as a destination."""
    payload = bytes([6 << 3]) + (public_key or secrets.token_bytes(32))
    checksum = _crc16_xmodem(payload).to_bytes(2, "little")
    return base64.b32encode(payload + checksum).decode()


_stellar_address = stellar_address


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("amount is a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError("amount is a number") from exc
    if not amount.is_finite() or amount <= 0:
        raise ValueError("amount is a positive number")
    return amount


def _error(status: int, code: str, message: str, payment: dict[str, Any] | None = None,
           headers: Mapping[str, str] | None = None) -> HandlerResult:
    payload: dict[str, Any] = {"error": code, "error_message": message}
    if payment is not None:
        payload["payment"] = payment
    return json_response(status, payload, headers)


class _SdkRefusal(Exception):
    """A ``/_fake`` route's error answer (with the CORS header)."""

    def __init__(self, status: int, code: str, message: str,
                 payment: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.answer = _error(status, code, message, payment, _CORS)


def _iso(timestamp: float, *, millis: bool = False) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakePiPlatform(FakeUpstreamBase):
    """An in-memory Pi Platform API for tests and the demo.

    ``server_api_key`` is what ``Authorization: Key ...`` must carry; ``me_shape`` picks
    the ``/v2/me`` body (``"official"`` or ``"user"``); ``me_extra`` adds unknown fields to
    the official body; ``network`` is ``"Pi Testnet"`` or ``"Pi Network"``. Failure
    injection (:meth:`fail_with`, :meth:`delay`, :meth:`garbage`, :meth:`drop_connection`)
    applies to the ``/v2`` API, not to the ``/_fake`` helper routes.
    """

    def __init__(
        self,
        server_api_key: str = DEFAULT_SERVER_API_KEY,
        *,
        me_shape: MeShape = "official",
        me_extra: Mapping[str, Any] | None = None,
        network: str = "Pi Testnet",
        latency: float = 0.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        uid_seed: str | None = None,
    ) -> None:
        super().__init__(latency=latency, clock=clock, sleep=sleep)
        self._server_api_key = server_api_key
        # With a seed, a username's uid is the same in every run (the demo keeps its
        # database across restarts); without one, each fake makes up its own uids.
        self._uid_seed = uid_seed
        self.me_shape = me_shape
        self.me_extra: dict[str, Any] = dict(me_extra or {})
        self.network = network
        self._grants: dict[str, _Grant] = {}
        self._usernames: dict[str, str] = {}  # uid -> username
        self._uids: dict[str, str] = {}  # username -> uid
        self._retired: set[str] = set()  # usernames whose Pioneer deauthorized the app
        self._wallets: dict[str, str] = {}  # uid -> wallet address
        self._payments: dict[str, _Payment] = {}
        self._app_wallet = _stellar_address()

    def __repr__(self) -> str:
        return (f"<FakePiPlatform url={self.url!r} me_shape={self.me_shape!r} "
                f"tokens={len(self._grants)} payments={len(self._payments)}>")

    @property
    def app_wallet(self) -> str:
        """The app wallet's address: ``from_address`` of its payouts, ``to_address`` of
        user payments. Set it to the public key of ``PIAUTH["PI_WALLET_SEED"]``."""
        with self._lock:
            return self._app_wallet

    @app_wallet.setter
    def app_wallet(self, address: str) -> None:
        with self._lock:
            self._app_wallet = address

    def has_wallet(self, address: str) -> bool:
        """Whether ``address`` is the wallet of a Pioneer the fake knows."""
        with self._lock:
            return address in self._wallets.values()

    def wallet_of(self, uid: str) -> str:
        """The Pioneer's wallet address (made on first use)."""
        with self._lock:
            return self._wallets.setdefault(uid, _stellar_address())

    # Configuration -------------------------------------------------------------

    @property
    def me_shape(self) -> MeShape:
        """The ``/v2/me`` body: ``"official"`` (uid, username, credentials) or ``"user"``."""
        return self._me_shape

    @me_shape.setter
    def me_shape(self, value: MeShape) -> None:
        if value not in ME_SHAPES:
            raise ValueError(f"me_shape is one of {ME_SHAPES}")
        self._me_shape: MeShape = value

    @property
    def server_api_key(self) -> str:
        """The Server API Key the payment routes accept."""
        return self._server_api_key

    def set_server_api_key(self, key: str) -> None:
        """Accept ``key`` (and only it) from now on."""
        with self._lock:
            self._server_api_key = key

    # Pioneers and tokens --------------------------------------------------------

    def uid_for(self, username: str) -> str:
        """The uid ``username`` has for this app: stable, made up on first use."""
        with self._lock:
            uid = self._uids.get(username)
            if uid is None:
                uid = self._uids[username] = (
                    hashlib.sha256(f"{self._uid_seed}:{username}".encode()).hexdigest()[:32]
                    if self._uid_seed is not None and username not in self._retired
                    else secrets.token_hex(16)
                )
                self._usernames[uid] = username
            return uid

    def username_of(self, uid: str) -> str | None:
        """The current username of ``uid``, or None if the fake never saw it."""
        with self._lock:
            return self._usernames.get(uid)

    def issue_token(
        self,
        uid: str | None = None,
        username: str | None = None,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        valid_for: float = 3600,
        valid_until: datetime | None = None,
    ) -> str:
        """A fresh access token for a Pioneer, as ``Pi.authenticate`` would hand the frontend.

        ``username`` defaults to the current username of ``uid``, else ``"alice"``. Without
        ``uid`` the same username always gets the same uid. The token expires after
        ``valid_for`` seconds, or at ``valid_until`` (a naive datetime is UTC).
        """
        scopes = tuple(scopes)
        if not all(isinstance(scope, str) and scope for scope in scopes):
            raise ValueError("scopes are non-empty strings")
        with self._lock:
            if username is None:
                username = self._usernames.get(uid, "alice") if uid is not None else "alice"
            if not isinstance(username, str) or not username:
                raise ValueError("username is a non-empty string")
            if uid is None:
                uid = self.uid_for(username)
            else:
                self._usernames[uid] = username
                self._uids[username] = uid
            if valid_until is not None:
                aware = valid_until if valid_until.tzinfo else valid_until.replace(tzinfo=UTC)
                expires = int(aware.timestamp())
            else:
                expires = int(self.now() + valid_for)
            token = secrets.token_urlsafe(32)
            self._grants[token] = _Grant(uid=uid, scopes=scopes, valid_until=expires)
            return token

    def revoke(self, token: str) -> None:
        """Make ``token`` answer 401 from now on (unknown tokens are ignored)."""
        with self._lock:
            grant = self._grants.get(token)
            if grant is not None:
                grant.revoked = True

    def deauthorize(self, uid: str) -> None:
        """The Pioneer revokes the app: every token of ``uid`` dies, and the next token
        issued for the same username carries a new uid, as on the real platform."""
        with self._lock:
            for grant in self._grants.values():
                if grant.uid == uid:
                    grant.revoked = True
            username = self._usernames.get(uid)
            if username is not None and self._uids.get(username) == uid:
                del self._uids[username]
                self._retired.add(username)

    def rename(self, uid: str, new_username: str) -> None:
        """The Pioneer changes their username upstream; ``/v2/me`` shows the new one."""
        if not isinstance(new_username, str) or not new_username:
            raise ValueError("new_username is a non-empty string")
        with self._lock:
            old = self._usernames.get(uid)
            if old is None:
                raise KeyError(uid)
            if self._uids.get(old) == uid:
                del self._uids[old]
            self._usernames[uid] = new_username
            self._uids[new_username] = uid

    # Payments --------------------------------------------------------------------

    def create_user_payment(self, uid: str, amount: Any, memo: str = "",
                            metadata: Any = None) -> str:
        """Seed a user-to-app payment, as the frontend's ``Pi.createPayment`` would; its id."""
        return self._create_payment(uid, _amount(amount), memo, metadata, "user_to_app")

    def create_app_payment(self, uid: str, amount: Any, memo: str = "",
                           metadata: Any = None) -> str:
        """Seed an app-to-user payment, as ``POST /v2/payments`` would; its id."""
        return self._create_payment(uid, _amount(amount), memo, metadata, "app_to_user")

    def submit_transaction(self, identifier: str, txid: str | None = None, *,
                           verified: bool = True) -> str:
        """The blockchain side: a transaction for the payment, verified by the platform
        unless ``verified=False`` (then call it again to verify it); returns its txid."""
        with self._lock:
            payment = self._payments[identifier]
            txid = txid or secrets.token_hex(32)
            payment.transaction = {**self._transaction(txid), "verified": verified}
            payment.transaction_verified = verified
            return txid

    def user_cancel(self, identifier: str) -> None:
        """The Pioneer cancels the payment in the wallet."""
        with self._lock:
            self._payments[identifier].user_cancelled = True

    def payment(self, identifier: str) -> dict[str, Any]:
        """The PaymentDTO of ``identifier`` (``KeyError`` if unknown)."""
        with self._lock:
            return self._dto(self._payments[identifier])

    def _create_payment(self, uid: str, amount: Decimal, memo: str, metadata: Any,
                        direction: str) -> str:
        with self._lock:
            wallet = self._wallets.setdefault(uid, _stellar_address())
            identifier = _random_id()
            from_address, to_address = ((wallet, self._app_wallet) if direction == "user_to_app"
                                        else (self._app_wallet, wallet))
            self._payments[identifier] = _Payment(
                identifier=identifier,
                user_uid=uid,
                amount=amount,
                memo=memo,
                metadata=metadata if metadata is not None else {},
                from_address=from_address,
                to_address=to_address,
                direction=direction,
                created_at=_iso(self.now(), millis=True),
                network=self.network,
                developer_approved=direction == "app_to_user",
            )
            return identifier

    def _transaction(self, txid: str) -> dict[str, Any]:
        host = "api.mainnet.minepi.com" if self.network == "Pi Network" else \
            "api.testnet.minepi.com"
        return {"txid": txid, "verified": True, "_link": f"https://{host}/transactions/{txid}"}

    @staticmethod
    def _dto(payment: _Payment) -> dict[str, Any]:
        return {
            "identifier": payment.identifier,
            "user_uid": payment.user_uid,
            "amount": _json_number(payment.amount),
            "memo": payment.memo,
            "metadata": payment.metadata,
            "from_address": payment.from_address,
            "to_address": payment.to_address,
            "direction": payment.direction,
            "created_at": payment.created_at,
            "network": payment.network,
            "status": {
                "developer_approved": payment.developer_approved,
                "transaction_verified": payment.transaction_verified,
                "developer_completed": payment.developer_completed,
                "cancelled": payment.cancelled,
                "user_cancelled": payment.user_cancelled,
            },
            "transaction": dict(payment.transaction) if payment.transaction else None,
        }

    # Serving ------------------------------------------------------------------------

    def injectable(self, path: str) -> bool:
        """Injected failures hit the ``/v2`` API only, never the ``/_fake`` helpers."""
        return path == "/v2" or path.startswith("/v2/")

    def route(self, method: str, path: str, query: str, headers: Mapping[str, str],
              body: bytes) -> HandlerResult:
        """Answer one request (see the module docstring for the routes)."""
        if method == "HEAD":
            method = "GET"
        sdk_route = self._sdk_routes().get(path)
        if sdk_route is not None:
            if method == "OPTIONS":
                return 204, dict(_PREFLIGHT), b""
            if method != "POST":
                return _error(405, "method_not_allowed", "use POST",
                              headers={**_CORS, "Allow": "POST, OPTIONS"})
            try:
                return sdk_route(body)
            except _SdkRefusal as refusal:
                return refusal.answer
        if path == "/v2/me":
            if method != "GET":
                return self._not_allowed("GET")
            return self._me(headers.get("authorization"))
        return self._payments_route(method, path, headers, body)

    @staticmethod
    def _not_allowed(allowed: str) -> HandlerResult:
        return _error(405, "method_not_allowed", f"use {allowed}", headers={"Allow": allowed})

    def _sdk_routes(self) -> dict[str, Callable[[bytes], HandlerResult]]:
        """The ``/_fake`` stand-ins for the frontend SDK, by path."""
        return {
            AUTHENTICATE_PATH: self._authenticate,
            CREATE_PAYMENT_PATH: self._sdk_create_payment,
            SIGN_TRANSACTION_PATH: self._sdk_sign_transaction,
            INCOMPLETE_PAYMENT_PATH: self._sdk_incomplete_payment,
        }

    def _live_grant(self, token: Any) -> _Grant | None:
        """The grant of a live access token (with the lock held), else None."""
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN:
            return None
        grant = self._grants.get(token)
        if grant is None or grant.revoked or self.now() >= grant.valid_until:
            return None
        return grant

    def _sdk_request(self, body: bytes) -> tuple[dict[str, Any], _Grant]:
        """The JSON object of a ``/_fake`` payment route's body and the grant of its
        ``accessToken`` (with the lock held); raises ``_SdkRefusal`` with the error."""
        try:
            request = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise _SdkRefusal(400, "bad_request", "the body is not JSON") from None
        if not isinstance(request, dict):
            raise _SdkRefusal(400, "bad_request", "the body is a JSON object")
        grant = self._live_grant(request.get("accessToken"))
        if grant is None:
            raise _SdkRefusal(401, "invalid_token",
                              "The access token is invalid, expired or revoked.")
        if "payments" not in grant.scopes:
            raise _SdkRefusal(403, "missing_scope",
                              "Pi.authenticate was not asked for the payments scope.")
        return request, grant

    def _unfinished_user_payment(self, uid: str) -> _Payment | None:
        """The Pioneer's oldest unfinished user-to-app payment (with the lock held)."""
        for payment in self._payments.values():
            if (payment.user_uid == uid and payment.direction == "user_to_app"
                    and not payment.finished):
                return payment
        return None

    def _sdk_create_payment(self, body: bytes) -> HandlerResult:
        """``POST /_fake/create_payment``: what ``Pi.createPayment`` starts."""
        with self._lock:
            request, grant = self._sdk_request(body)
            memo, metadata = request.get("memo", ""), request.get("metadata", {})
            try:
                amount = _amount(request.get("amount"))
            except ValueError as exc:
                raise _SdkRefusal(400, "bad_request", str(exc)) from None
            exponent = amount.as_tuple().exponent
            if not isinstance(exponent, int) or exponent < -_AMOUNT_PLACES:
                raise _SdkRefusal(400, "bad_request",
                                  f"amount has at most {_AMOUNT_PLACES} decimal places")
            if not isinstance(memo, str) or len(memo) > _MAX_MEMO:
                raise _SdkRefusal(400, "bad_request",
                                  f"memo is a string of at most {_MAX_MEMO} characters")
            if not isinstance(metadata, dict):
                raise _SdkRefusal(400, "bad_request", "metadata is a JSON object")
            ongoing = self._unfinished_user_payment(grant.uid)
            if ongoing is not None:
                raise _SdkRefusal(409, "ongoing_payment_found",
                                  "The Pioneer has an unfinished payment: hand it to "
                                  "onIncompletePaymentFound first.", self._dto(ongoing))
            identifier = self._create_payment(grant.uid, amount, memo, metadata,
                                              "user_to_app")
        return json_response(200, {"identifier": identifier}, _CORS)

    def _sdk_sign_transaction(self, body: bytes) -> HandlerResult:
        """``POST /_fake/sign_transaction``: the Pioneer signs the payment in the wallet."""
        with self._lock:
            request, grant = self._sdk_request(body)
            identifier = request.get("paymentId")
            if not isinstance(identifier, str) or not re.fullmatch(_PAYMENT_ID, identifier):
                raise _SdkRefusal(400, "bad_request", "paymentId is a payment's identifier")
            payment = self._payments.get(identifier)
            if payment is None:
                raise _SdkRefusal(404, "payment_not_found", "There is no payment with this id.")
            if payment.user_uid != grant.uid or payment.direction != "user_to_app":
                raise _SdkRefusal(403, "not_yours", "This is not the Pioneer's payment to sign.")
            if payment.cancelled or payment.user_cancelled:
                raise _SdkRefusal(409, "cancelled_payment", "The payment was cancelled.")
            if payment.developer_completed:
                raise _SdkRefusal(409, "already_completed", "The payment is already completed.")
            if payment.transaction is not None:  # signed already: the same transaction
                return json_response(200, {"txid": payment.transaction["txid"]}, _CORS)
            if not payment.developer_approved:
                raise _SdkRefusal(409, "not_approved", "The app's server has not approved the "
                                  "payment: the wallet does not sign it yet.")
            txid = self.submit_transaction(identifier)
        return json_response(200, {"txid": txid}, _CORS)

    def _sdk_incomplete_payment(self, body: bytes) -> HandlerResult:
        """``POST /_fake/incomplete_payment``: what ``onIncompletePaymentFound`` gets."""
        with self._lock:
            _request, grant = self._sdk_request(body)
            payment = self._unfinished_user_payment(grant.uid)
            dto = self._dto(payment) if payment is not None else None
        return json_response(200, {"payment": dto}, _CORS)

    def _authenticate(self, body: bytes) -> HandlerResult:
        """``POST /_fake/authenticate``: what ``Pi.authenticate`` resolves to (AuthResults)."""
        try:
            request = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return _error(400, "bad_request", "the body is not JSON", headers=_CORS)
        username = request.get("username") if isinstance(request, dict) else None
        scopes = request.get("scopes", list(DEFAULT_SCOPES)) if isinstance(request, dict) else None
        if (not isinstance(username, str) or not username.strip()
                or len(username) > _MAX_USERNAME or not username.isprintable()):
            return _error(400, "bad_request", "username is a short non-empty string",
                          headers=_CORS)
        if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
            return _error(400, "bad_request", "scopes is a list of strings", headers=_CORS)
        with self._lock:
            token = self.issue_token(username=username.strip(), scopes=scopes)
            grant = self._grants[token]
            user: dict[str, Any] = {"uid": grant.uid}
            if "username" in grant.scopes:
                user["username"] = self._usernames[grant.uid]
        return json_response(200, {"accessToken": token, "user": user}, _CORS)

    def _me(self, authorization: str | None) -> HandlerResult:
        """``GET /v2/me``: the identity behind a live Bearer token, else 401."""
        scheme, _sep, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        with self._lock:
            grant = self._grants.get(token) if scheme.lower() == "bearer" and token else None
            if grant is None or grant.revoked or self.now() >= grant.valid_until:
                return _error(401, "invalid_token",
                              "The access token is invalid, expired or revoked.",
                              headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            username = self._usernames.get(grant.uid)
            user: dict[str, Any] = {"uid": grant.uid}
            if "username" in grant.scopes and username is not None:
                user["username"] = username
            if self.me_shape == "user":
                return json_response(200, {"user": user})
            payload: dict[str, Any] = {
                **self.me_extra,
                **user,
                "credentials": {
                    "scopes": list(grant.scopes),
                    "valid_until": {"timestamp": grant.valid_until,
                                    "iso8601": _iso(grant.valid_until)},
                },
            }
            return json_response(200, payload)

    def _key_ok(self, authorization: str | None) -> bool:
        scheme, _sep, key = (authorization or "").strip().partition(" ")
        with self._lock:
            expected = self._server_api_key
        return (scheme.lower() == "key" and bool(key.strip())
                and hmac.compare_digest(key.strip().encode(), expected.encode()))

    def _payments_route(self, method: str, path: str, headers: Mapping[str, str],
                        body: bytes) -> HandlerResult:
        action_match = _PAYMENT_ACTION_ROUTE.fullmatch(path)
        payment_match = _PAYMENT_ROUTE.fullmatch(path)
        if path == "/v2/payments":
            allowed = "POST"
        elif path == "/v2/payments/incomplete_server_payments" or payment_match:
            allowed = "GET"
        elif action_match:
            allowed = "POST"
        else:
            return _error(404, "not_found", "no such route")
        if method != allowed:
            return self._not_allowed(allowed)
        if not self._key_ok(headers.get("authorization")):
            return _error(401, "unauthorized", "A valid Server API Key is required.",
                          headers={"WWW-Authenticate": "Key"})
        if path == "/v2/payments":
            return self._create_from_api(body)
        with self._lock:
            if path == "/v2/payments/incomplete_server_payments":
                incomplete = [self._dto(p) for p in self._payments.values()
                              if p.direction == "app_to_user" and not p.finished]
                return json_response(200, {"incomplete_server_payments": incomplete})
            match = action_match or payment_match
            assert match is not None  # noqa: S101 - narrowed by the branches above
            payment = self._payments.get(match["id"])
            if payment is None:
                return _error(404, "payment_not_found", "There is no payment with this id.")
            action = match["action"] if action_match else None
            if action == "approve":
                return self._approve(payment)
            if action == "complete":
                return self._complete(payment, body)
            if action == "cancel":
                return self._cancel(payment)
            return json_response(200, self._dto(payment))

    def _refuse_finished(self, payment: _Payment) -> HandlerResult | None:
        """The error for acting on a cancelled or completed payment, else None."""
        if payment.cancelled or payment.user_cancelled:
            return _error(400, "cancelled_payment", "The payment was cancelled.",
                          self._dto(payment))
        if payment.developer_completed:
            return _error(400, "already_completed", "The payment is already completed.",
                          self._dto(payment))
        return None

    def _approve(self, payment: _Payment) -> HandlerResult:
        if payment.direction != "user_to_app":
            return _error(400, "not_user_to_app", "Only user-to-app payments are approved.",
                          self._dto(payment))
        refusal = self._refuse_finished(payment)
        if refusal is not None:
            return refusal
        payment.developer_approved = True
        return json_response(200, self._dto(payment))

    def _complete(self, payment: _Payment, body: bytes) -> HandlerResult:
        try:
            request = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            request = None
        txid = request.get("txid") if isinstance(request, dict) else None
        if not isinstance(txid, str) or not txid.strip():
            return _error(400, "bad_request", "The body must be {\"txid\": \"...\"}.")
        refusal = self._refuse_finished(payment)
        if refusal is not None:
            return refusal
        if not payment.developer_approved:
            return _error(400, "not_approved", "The payment was not approved.",
                          self._dto(payment))
        if payment.transaction is not None and payment.transaction["txid"] != txid:
            return _error(400, "txid_mismatch", "The txid does not match the payment's.",
                          self._dto(payment))
        if payment.transaction is not None and not payment.transaction_verified:
            return _error(400, "not_verified", "The transaction is not verified yet.",
                          self._dto(payment))
        if payment.direction == "app_to_user" and payment.transaction is None:
            # A payout completes only with a transaction the platform saw on the chain
            # paying this payment (FakeHorizon tells it: destination, amount and memo).
            return _error(400, "not_verified", "No transaction on the chain pays this "
                          "payment.", self._dto(payment))
        if payment.transaction is None:
            payment.transaction = self._transaction(txid)
            payment.transaction_verified = True
        payment.developer_completed = True
        return json_response(200, self._dto(payment))

    def _cancel(self, payment: _Payment) -> HandlerResult:
        if payment.developer_completed:
            return _error(400, "already_completed", "The payment is already completed.",
                          self._dto(payment))
        payment.cancelled = True
        return json_response(200, self._dto(payment))

    def _create_from_api(self, body: bytes) -> HandlerResult:
        """``POST /v2/payments``: an app-to-user payment."""
        try:
            request = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            request = None
        data = request.get("payment") if isinstance(request, dict) else None
        if not isinstance(data, dict):
            return _error(400, "bad_request", "The body must be {\"payment\": {...}}.")
        uid, memo = data.get("uid"), data.get("memo", "")
        try:
            amount = _amount(data.get("amount"))
        except ValueError as exc:
            return _error(400, "bad_request", str(exc))
        if not isinstance(uid, str) or not isinstance(memo, str):
            return _error(400, "bad_request", "uid and memo are strings")
        with self._lock:
            if uid not in self._usernames:
                return _error(400, "user_not_found", "No Pioneer with this uid uses the app.")
            for other in self._payments.values():
                if (other.user_uid == uid and other.direction == "app_to_user"
                        and not other.finished):
                    return _error(400, "ongoing_payment_found",
                                  "The Pioneer has an incomplete payment.", self._dto(other))
            identifier = self._create_payment(uid, amount, memo, data.get("metadata"),
                                              "app_to_user")
            return json_response(200, self._dto(self._payments[identifier]))
