"""Pi Platform API client: ``GET /v2/me`` with a Pioneer's access token, and the calls
made with the app's Server API Key. Plain HTTP, no models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

from ..conf import built_from_settings, default_deadline, piauth_settings
from ..exceptions import (
    PAYMENT_ERRORS,
    InvalidToken,
    PaymentError,
    UpstreamError,
    UpstreamUnavailable,
)
from .http import UpstreamResponse, join_url, send
from .payment_dto import PaymentDTO, parse_payment

SERVICE = "Pi Platform"


@dataclass(frozen=True)
class PiIdentity:
    """What ``/v2/me`` vouches for. Carried as DRF's ``request.auth``; never the raw token."""

    uid: str
    username: str | None = None
    scopes: tuple[str, ...] = ()
    valid_until: datetime | None = None
    provider: str = field(default="pi", init=False)


def _parse_valid_until(credentials: Any) -> datetime | None:
    """``credentials.valid_until``: ISO-8601 preferred, epoch seconds otherwise."""
    if not isinstance(credentials, dict):
        return None
    valid_until = credentials.get("valid_until")
    if not isinstance(valid_until, dict):
        return None
    iso = valid_until.get("iso8601")
    if isinstance(iso, str):
        try:
            parsed = datetime.fromisoformat(iso)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    timestamp = valid_until.get("timestamp")
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        try:
            return datetime.fromtimestamp(timestamp, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def parse_me(payload: Any) -> PiIdentity:
    """Read a ``/v2/me`` body in either documented shape, or raise ``UpstreamUnavailable``.

    Official: ``{"uid", "username", "credentials": {...}}``; some docs show
    ``{"user": {"uid", "username"}}``. Unknown fields are ignored.
    """
    if not isinstance(payload, dict):
        raise UpstreamUnavailable(f"{SERVICE} /v2/me answered a body that is not an object",
                                  service=SERVICE)
    source = payload if "uid" in payload else payload.get("user")
    if not isinstance(source, dict):
        raise UpstreamUnavailable(f"{SERVICE} /v2/me answered without a uid", service=SERVICE)
    uid = source.get("uid")
    if not isinstance(uid, str) or not uid.strip() or len(uid) > 255:
        raise UpstreamUnavailable(f"{SERVICE} /v2/me answered without a usable uid",
                                  service=SERVICE)
    username = source.get("username")
    if not isinstance(username, str) or not username:
        username = None
    credentials = payload.get("credentials") or source.get("credentials")
    scopes: tuple[str, ...] = ()
    if isinstance(credentials, dict) and isinstance(credentials.get("scopes"), list):
        scopes = tuple(scope for scope in credentials["scopes"] if isinstance(scope, str))
    return PiIdentity(
        uid=uid,
        username=username,
        scopes=scopes,
        valid_until=_parse_valid_until(credentials),
    )


class PiPlatformClient:
    """One app's view of the Pi Platform API.

    Built from ``PIAUTH`` by :func:`get_pi_client`; the Server API Key is kept out of
    ``repr`` and of every exception message.
    """

    def __init__(
        self,
        base_url: str,
        *,
        server_api_key: str | None = None,
        timeout: tuple[float, float] = (3.0, 5.0),
        deadline: float | None = None,
        max_response_bytes: int = 256 * 1024,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._server_api_key = server_api_key
        self.timeout = timeout
        #: Seconds a whole call may take (``CALL_DEADLINE``).
        self.deadline = deadline if deadline is not None else default_deadline(timeout)
        self.max_response_bytes = max_response_bytes

    def __repr__(self) -> str:
        key = "set" if self._server_api_key else "not set"
        return f"<PiPlatformClient {self.base_url} server_api_key={key}>"

    def _send(self, method: str, path: str, authorization: str,
              json_body: Any = None) -> UpstreamResponse:
        return send(
            method,
            join_url(self.base_url, path),
            service=SERVICE,
            headers={"Authorization": authorization, "Accept": "application/json"},
            json_body=json_body,
            timeout=self.timeout,
            deadline=self.deadline,
            max_bytes=self.max_response_bytes,
        )

    def me(self, access_token: str) -> PiIdentity:
        """Verify a Pioneer's access token; ``InvalidToken`` on 401, else the identity."""
        response = self._send("GET", "/v2/me", f"Bearer {access_token}")
        if response.status == 401:
            raise InvalidToken("the Pi Platform rejected the access token")
        if response.status != 200:
            raise UpstreamUnavailable(f"{SERVICE} /v2/me answered {response.status}",
                                      service=SERVICE)
        return parse_me(response.json())

    # Server API Key calls ---------------------------------------------------------

    @sensitive_variables()  # here and below: the Server API Key rides in a header
    def server_call(self, method: str, path: str, json_body: Any = None) -> Any:
        """A call made with ``Authorization: Key <Server API Key>``; returns the JSON body.

        A documented error body (``{"error": code, "error_message": ...}``) with a 4xx
        raises ``UpstreamError``: the ``PaymentError`` subclass of a documented payment
        code (see :func:`upstream_error`); 5xx, timeouts and garbage raise
        ``UpstreamUnavailable``.
        """
        if not self._server_api_key:
            raise ImproperlyConfigured(
                "PIAUTH['PI_SERVER_API_KEY'] is not set; server-side Pi Platform calls need it."
            )
        response = self._send(method, path, f"Key {self._server_api_key}", json_body)
        if response.cannot_say:
            raise UpstreamUnavailable(f"{SERVICE} {path} answered {response.status}",
                                      service=SERVICE)
        body = response.json()
        if response.status != 200:
            raise upstream_error(path, response.status, body)
        return body

    @sensitive_variables()
    def payment_call(self, method: str, path: str, json_body: Any = None) -> PaymentDTO:
        """A payment route's answer as a ``PaymentDTO``; an answer that is not one is
        ``UpstreamUnavailable``."""
        return parse_payment(self.server_call(method, path, json_body))

    def get_payment(self, payment_id: str) -> PaymentDTO:
        """``GET /v2/payments/{id}``."""
        return self.payment_call("GET", f"/v2/payments/{path_segment(payment_id)}")

    def approve_payment(self, payment_id: str) -> PaymentDTO:
        """``POST /v2/payments/{id}/approve`` (user-to-app payments)."""
        return self.payment_call("POST", f"/v2/payments/{path_segment(payment_id)}/approve")

    def complete_payment(self, payment_id: str, txid: str) -> PaymentDTO:
        """``POST /v2/payments/{id}/complete`` with the blockchain txid."""
        return self.payment_call("POST", f"/v2/payments/{path_segment(payment_id)}/complete",
                                 {"txid": txid})

    def cancel_payment(self, payment_id: str) -> PaymentDTO:
        """``POST /v2/payments/{id}/cancel``."""
        return self.payment_call("POST", f"/v2/payments/{path_segment(payment_id)}/cancel")

    def create_payment(self, uid: str, amount: Decimal, memo: str,
                       metadata: Any) -> PaymentDTO:
        """``POST /v2/payments``: an app-to-user payment to the Pioneer ``uid``. The amount
        travels as a JSON number; one a double cannot hold exactly is refused here."""
        number = float(amount)
        if Decimal(repr(number)) != amount:
            raise ValueError(f"{amount} Pi cannot be sent exactly as a JSON number")
        return self.payment_call("POST", "/v2/payments", {"payment": {
            "amount": number, "memo": memo, "metadata": metadata, "uid": uid}})

    def incomplete_server_payments(self) -> list[PaymentDTO]:
        """``GET /v2/payments/incomplete_server_payments``: the app's unfinished payouts."""
        body = self.server_call("GET", "/v2/payments/incomplete_server_payments")
        payments = body.get("incomplete_server_payments") if isinstance(body, dict) else None
        if not isinstance(payments, list):
            raise UpstreamUnavailable(f"{SERVICE} answered an unexpected body", service=SERVICE)
        return [parse_payment(payment) for payment in payments]


def upstream_error(path: str, status: int, body: Any) -> UpstreamError:
    """The exception of a documented 4xx error body: a ``PaymentError`` subclass for a
    payment code (carrying the PaymentDTO the body named, or None if that is garbage),
    a plain ``UpstreamError`` for another code on another route."""
    fields = body if isinstance(body, dict) else {}
    code = fields.get("error") if isinstance(fields.get("error"), str) else None
    message = fields.get("error_message")
    text = (f"{SERVICE} {path} answered {status}" + (f" {code}" if code else "")
            + (f": {message}" if isinstance(message, str) else ""))
    error_class = PAYMENT_ERRORS.get(code or "")
    if error_class is None and not path.startswith("/v2/payments"):
        return UpstreamError(text, status=status, code=code, body=body)
    payment = None
    if fields.get("payment") is not None:
        try:
            payment = parse_payment(fields["payment"])
        except UpstreamUnavailable:
            payment = None
    return (error_class or PaymentError)(text, status=status, code=code, body=body,
                                         payment=payment)


def path_segment(value: Any) -> str:
    """A payment id from a client is a path segment, never a path or a URL."""
    if (not isinstance(value, str) or not value or len(value) > 128
            or not all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in value)):
        raise ValueError("a payment id is 1 to 128 letters, digits, '-' and '_'")
    return value


def _build_client() -> PiPlatformClient:
    return PiPlatformClient(
        piauth_settings.PI_API_URL,
        server_api_key=piauth_settings.PI_SERVER_API_KEY,
        timeout=piauth_settings.timeout,
        deadline=piauth_settings.deadline,
        max_response_bytes=piauth_settings.MAX_RESPONSE_BYTES,
    )


#: The client built from ``PIAUTH``; rebuilt when the settings change.
get_pi_client = built_from_settings(_build_client)
