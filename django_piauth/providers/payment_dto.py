"""The Pi Platform's PaymentDTO, read into typed values (``Decimal`` amounts, status flags,
the blockchain transaction) or refused as a body of the wrong shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..exceptions import UpstreamUnavailable

SERVICE = "Pi Platform"

#: Pi amounts have seven decimal places.
AMOUNT_PLACES = Decimal("0.0000001")
#: What ``PiPayment.amount`` (30 digits, 7 of them decimal) can hold.
MAX_AMOUNT = Decimal(10) ** 23
DIRECTIONS = ("user_to_app", "app_to_user")
STATUS_FLAGS = ("developer_approved", "transaction_verified", "developer_completed",
                "cancelled", "user_cancelled")


@dataclass(frozen=True)
class PaymentTransaction:
    """The blockchain side of a payment: its txid, whether the platform verified it, and
    the platform's link to it (shown, never followed)."""

    txid: str
    verified: bool
    link: str = ""


@dataclass(frozen=True)
class PaymentStatus:
    developer_approved: bool = False
    transaction_verified: bool = False
    developer_completed: bool = False
    cancelled: bool = False
    user_cancelled: bool = False

    @property
    def any_cancelled(self) -> bool:
        """Cancelled by the app (``cancelled``) or by the Pioneer (``user_cancelled``)."""
        return self.cancelled or self.user_cancelled


@dataclass(frozen=True)
class PaymentDTO:
    """A payment as the Pi Platform describes it: the only source of its amount,
    recipient and state."""

    identifier: str
    user_uid: str
    amount: Decimal
    memo: str
    metadata: Any
    from_address: str
    to_address: str
    direction: str
    created_at: datetime | None
    network: str
    status: PaymentStatus
    transaction: PaymentTransaction | None

    @property
    def txid(self) -> str:
        return self.transaction.txid if self.transaction is not None else ""


def _wrong_shape(what: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"{SERVICE} answered a payment with {what}", service=SERVICE)


def parse_amount(value: Any) -> Decimal:
    """A positive amount with at most seven decimal places, exactly as the platform sent it."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _wrong_shape("an amount that is not a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _wrong_shape("an amount that is not a number") from None
    if not amount.is_finite():
        raise _wrong_shape("an amount that is not a positive Pi amount")
    try:
        exact = amount.quantize(AMOUNT_PLACES)  # InvalidOperation past 28 digits
    except InvalidOperation:
        raise _wrong_shape("an amount that is not a positive Pi amount") from None
    if amount <= 0 or amount != exact or amount >= MAX_AMOUNT:  # finite: checked above
        raise _wrong_shape("an amount that is not a positive Pi amount")
    return exact


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(body: dict[str, Any], key: str, *, limit: int | None = None) -> str:
    """A string field (absent: empty); ``limit``: the column that stores it."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or (limit is not None and len(value) > limit):
        raise _wrong_shape(f"a {key} that is not a string of at most {limit} characters"
                           if limit else f"a {key} that is not a string")
    return value


def _parse_status(value: Any) -> PaymentStatus:
    if not isinstance(value, dict):
        raise _wrong_shape("no status")
    flags = {}
    for flag in STATUS_FLAGS:
        flag_value = value.get(flag, False)
        if not isinstance(flag_value, bool):
            raise _wrong_shape(f"a status.{flag} that is not true or false")
        flags[flag] = flag_value
    return PaymentStatus(**flags)


def _parse_transaction(value: Any) -> PaymentTransaction | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _wrong_shape("a transaction that is not an object")
    txid, verified, link = value.get("txid"), value.get("verified", False), value.get("_link")
    if not isinstance(txid, str) or not txid or len(txid) > 255:
        raise _wrong_shape("a transaction without a txid")
    if not isinstance(verified, bool):
        raise _wrong_shape("a transaction.verified that is not true or false")
    return PaymentTransaction(txid=txid, verified=verified,
                              link=link if isinstance(link, str) else "")


def parse_payment(body: Any) -> PaymentDTO:
    """The PaymentDTO in ``body``, or ``UpstreamUnavailable``: a body that is not the
    documented shape says nothing about the payment."""
    if not isinstance(body, dict):
        raise _wrong_shape("a body that is not an object")
    identifier, user_uid = body.get("identifier"), body.get("user_uid")
    if not isinstance(identifier, str) or not identifier or len(identifier) > 255:
        raise _wrong_shape("no identifier")
    if not isinstance(user_uid, str) or not user_uid or len(user_uid) > 255:
        raise _wrong_shape("no user_uid")
    direction = body.get("direction")
    if direction not in DIRECTIONS:
        raise _wrong_shape("an unknown direction")
    return PaymentDTO(
        identifier=identifier,
        user_uid=user_uid,
        amount=parse_amount(body.get("amount")),
        memo=_text(body, "memo"),
        metadata=body.get("metadata") if body.get("metadata") is not None else {},
        from_address=_text(body, "from_address", limit=255),
        to_address=_text(body, "to_address", limit=255),
        direction=direction,
        created_at=_parse_time(body.get("created_at")),
        network=_text(body, "network", limit=64),
        status=_parse_status(body.get("status")),
        transaction=_parse_transaction(body.get("transaction")),
    )
