"""Horizon, the Pi blockchain's HTTP API: the accounts, the base fee, submitting a signed
transaction and looking one up by its hash. Plain HTTP through :func:`.http.send` (the
same timeouts, deadline and size limit as every upstream call); building and signing
transactions is :mod:`django_piauth.stellar`'s job.

Outcomes: a value; ``HorizonRejected`` when Horizon refused a transaction (its result
codes say why: ``tx_bad_seq``, ``tx_too_late``, ``op_no_destination``...); ``None`` for
an account or transaction Horizon does not have; ``UpstreamUnavailable`` when it cannot
say (5xx, timeouts, garbage), in which case a submitted transaction may or may not have
landed: look it up by its hash before signing anything new.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..conf import built_from_settings, piauth_settings
from ..exceptions import PiAuthError, UpstreamUnavailable
from .http import UpstreamResponse, join_url, send

SERVICE = "Pi Horizon"
_ACCOUNT_ID = re.compile(r"G[A-Z2-7]{55}")
_TX_HASH = re.compile(r"[0-9a-f]{64}")


class HorizonRejected(PiAuthError):
    """Horizon refused the transaction: ``transaction_code`` (e.g. ``tx_bad_seq``,
    ``tx_too_late``, ``tx_failed``) and ``operation_codes`` (e.g. ``op_no_destination``,
    ``op_underfunded``). A refused transaction did not land and never will."""

    def __init__(self, transaction_code: str, operation_codes: tuple[str, ...] = ()) -> None:
        detail = ", ".join(operation_codes)
        super().__init__(f"{SERVICE} refused the transaction: {transaction_code}"
                         + (f" ({detail})" if detail else ""))
        self.transaction_code = transaction_code
        self.operation_codes = operation_codes


@dataclass(frozen=True)
class HorizonAccount:
    account_id: str
    sequence: int
    balance: Decimal  # native (Pi)


@dataclass(frozen=True)
class HorizonTransaction:
    hash: str
    successful: bool
    ledger: int | None
    memo: str


def _wrong_shape(what: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"{SERVICE} answered {what}", service=SERVICE)


def account_id(value: Any) -> str:
    """An account id (``G...``) fit for a URL path, or ``ValueError``."""
    if not isinstance(value, str) or not _ACCOUNT_ID.fullmatch(value):
        raise ValueError("an account id is G followed by 55 base32 characters")
    return value


def transaction_hash(value: Any) -> str:
    if not isinstance(value, str) or not _TX_HASH.fullmatch(value):
        raise ValueError("a transaction hash is 64 lowercase hex digits")
    return value


class HorizonClient:
    def __init__(self, base_url: str, *, timeout: tuple[float, float] = (3.0, 5.0),
                 deadline: float | None = None, max_response_bytes: int = 256 * 1024) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout, self.deadline = timeout, deadline
        self.max_response_bytes = max_response_bytes

    def __repr__(self) -> str:
        return f"<HorizonClient {self.base_url}>"

    def _send(self, method: str, path: str, form: dict[str, Any] | None = None
              ) -> UpstreamResponse:
        response = send(method, join_url(self.base_url, path), service=SERVICE,
                        headers={"Accept": "application/json"}, form_body=form,
                        timeout=self.timeout, deadline=self.deadline,
                        max_bytes=self.max_response_bytes)
        if response.cannot_say:
            raise UpstreamUnavailable(f"{SERVICE} {path.split('?')[0]} answered "
                                      f"{response.status}", service=SERVICE)
        return response

    def _found(self, path: str) -> dict[str, Any] | None:
        response = self._send("GET", path)
        if response.status == 404:
            return None
        body = response.json()
        if response.status != 200 or not isinstance(body, dict):
            raise _wrong_shape(f"{response.status} for {path}")
        return body

    def account(self, address: str) -> HorizonAccount | None:
        """``GET /accounts/{id}``: its sequence number and native balance; None if the
        account does not exist (not created, or merged away)."""
        body = self._found(f"/accounts/{account_id(address)}")
        if body is None:
            return None
        try:
            raw_sequence = body["sequence"]  # a string of digits; never a float or bool
            if isinstance(raw_sequence, bool) or not isinstance(raw_sequence, str | int):
                raise TypeError("a sequence that is not a string")
            sequence = int(raw_sequence)
            native = [b for b in body["balances"] if b.get("asset_type") == "native"]
            balance = Decimal(native[0]["balance"]) if native else Decimal(0)
        except (KeyError, TypeError, ValueError, IndexError, InvalidOperation, AttributeError):
            raise _wrong_shape("an account of the wrong shape") from None
        if sequence < 0 or not balance.is_finite():
            raise _wrong_shape("an account of the wrong shape")
        return HorizonAccount(account_id=address, sequence=sequence, balance=balance)

    def base_fee(self) -> int:
        """The network's base fee in stroops (``GET /fee_stats``)."""
        body = self._found("/fee_stats")
        try:
            fee = int((body or {})["last_ledger_base_fee"])
        except (KeyError, TypeError, ValueError):
            raise _wrong_shape("fee stats of the wrong shape") from None
        if not 0 < fee < 10**9:
            raise _wrong_shape("a base fee out of range")
        return fee

    def transaction(self, tx_hash: str) -> HorizonTransaction | None:
        """``GET /transactions/{hash}``: the transaction as the ledger holds it, or None
        if it never landed (yet)."""
        body = self._found(f"/transactions/{transaction_hash(tx_hash)}")
        if body is None:
            return None
        return _parse_transaction(body, tx_hash)

    def submit(self, envelope_xdr: str, tx_hash: str) -> HorizonTransaction:
        """``POST /transactions`` (form field ``tx``): the landed transaction, or
        ``HorizonRejected``. ``tx_hash`` is the hash of the envelope, known before."""
        response = self._send("POST", "/transactions", {"tx": envelope_xdr})
        body = response.json()
        if response.status == 200 and isinstance(body, dict):
            return _parse_transaction(body, tx_hash)
        extras = body.get("extras") if isinstance(body, dict) else None
        codes = extras.get("result_codes") if isinstance(extras, dict) else None
        if response.status == 400 and isinstance(codes, dict) and isinstance(
                codes.get("transaction"), str):
            operations = codes.get("operations") or []
            return_codes = tuple(c for c in operations if isinstance(c, str))
            raise HorizonRejected(codes["transaction"], return_codes)
        raise _wrong_shape(f"{response.status} to a submission")


def _parse_transaction(body: dict[str, Any], tx_hash: str) -> HorizonTransaction:
    if body.get("hash") != tx_hash:
        raise _wrong_shape("another transaction")
    ledger = body.get("ledger")
    memo = body.get("memo", "")
    if not isinstance(ledger, int | None) or isinstance(ledger, bool) or not isinstance(
            memo, str):
        raise _wrong_shape("a transaction of the wrong shape")
    return HorizonTransaction(hash=tx_hash, successful=body.get("successful") is True,
                              ledger=ledger, memo=memo)


def _build_client() -> HorizonClient:
    return HorizonClient(piauth_settings.horizon_url, timeout=piauth_settings.timeout,
                         deadline=piauth_settings.deadline,
                         max_response_bytes=piauth_settings.MAX_RESPONSE_BYTES)


#: The client of ``PIAUTH``'s Horizon; rebuilt when the settings change.
get_horizon_client = built_from_settings(_build_client)
