"""A fake Horizon: the Pi blockchain's API in memory, for payout tests and the demo.

Routes: ``GET /accounts/{id}`` (sequence and native balance; 404 for an account that
does not exist), ``GET /fee_stats``, ``POST /transactions`` (form field ``tx``, base64
XDR) and ``GET /transactions/{hash}``.

A submission is checked as Horizon checks it and refused with Horizon's result codes:
an envelope that does not parse (``tx_malformed``), a source account that does not exist
(``tx_no_source_account``), a fee under the base fee (``tx_insufficient_fee``), a
sequence number that is not the account's next (``tx_bad_seq``: a replay is one), time
bounds passed or not yet reached (``tx_too_late`` / ``tx_too_early``), a signature that is
not the source's over this network's passphrase (``tx_bad_auth``), and, for its one
native payment, a missing destination (``op_no_destination``) or too small a balance
(``op_underfunded``). A landed transaction moves the balances, takes the fee, and tells
the fake Pi Platform (when given) so the payment named by its text memo has a verified
transaction, as the real platform sees it on the chain.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .base import FakeUpstreamBase, HandlerResult, json_response

BASE_FEE = 100_000  # stroops (0.01 Pi), Pi's base fee
STROOPS = Decimal("0.0000001")


@dataclass
class _Account:
    sequence: int
    balance: Decimal


@dataclass
class LandedTransaction:
    """A transaction on the fake chain."""

    hash: str
    ledger: int
    source: str
    destination: str
    amount: Decimal
    memo: str
    fee: int
    envelope_xdr: str = field(repr=False)


def _rejected(transaction: str, *operations: str) -> HandlerResult:
    codes: dict[str, Any] = {"transaction": transaction}
    if operations:
        codes["operations"] = list(operations)
    return json_response(400, {
        "type": "https://stellar.org/horizon-errors/transaction_failed",
        "title": "Transaction Failed", "status": 400,
        "extras": {"result_codes": codes}})


def _not_found() -> HandlerResult:
    return json_response(404, {"type": "https://stellar.org/horizon-errors/not_found",
                               "title": "Resource Missing", "status": 404})


class FakeHorizon(FakeUpstreamBase):
    """Accounts with sequence numbers and balances, and a ledger of landed transactions.

    ``platform``: a :class:`~django_piauth.testing.FakePiPlatform` told of each landed
    payment (its memo is the payment's identifier).
    """

    def __init__(self, network_passphrase: str = "Pi Testnet", *, platform: Any = None,  # noqa: S107 - a network name
                 base_fee: int = BASE_FEE, open_pioneer_accounts: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: The demo: a Pioneer's wallet the platform made has an (empty) account here.
        self.open_pioneer_accounts = open_pioneer_accounts
        self.network_passphrase = network_passphrase
        self.platform = platform
        self.base_fee = base_fee
        self._accounts: dict[str, _Account] = {}
        self._ledger: list[LandedTransaction] = []
        self._refusals: list[str] = []
        self._chain_lock = threading.RLock()

    def __repr__(self) -> str:
        return (f"<FakeHorizon {self.network_passphrase!r} accounts={len(self._accounts)} "
                f"transactions={len(self._ledger)}>")

    # Set-up and inspection ----------------------------------------------------------

    def create_account(self, address: str, balance: Any = 1000, sequence: int = 0) -> None:
        with self._chain_lock:
            self._accounts[address] = _Account(sequence=sequence, balance=Decimal(balance))

    def remove_account(self, address: str) -> None:
        """The account is merged away: payments to it fail with ``op_no_destination``."""
        with self._chain_lock:
            self._accounts.pop(address, None)

    def balance(self, address: str) -> Decimal:
        with self._chain_lock:
            return self._accounts[address].balance

    def sequence(self, address: str) -> int:
        with self._chain_lock:
            return self._accounts[address].sequence

    @property
    def refusals(self) -> list[str]:
        """The result codes of the submissions refused so far (``tx_bad_seq``...)."""
        with self._chain_lock:
            return list(self._refusals)

    @property
    def transactions(self) -> list[LandedTransaction]:
        """The landed transactions, oldest first."""
        with self._chain_lock:
            return list(self._ledger)

    # Serving ------------------------------------------------------------------------

    def route(self, method: str, path: str, query: str, headers: Mapping[str, str],
              body: bytes) -> HandlerResult:
        parts = path.strip("/").split("/")
        if method == "GET" and len(parts) == 2 and parts[0] == "accounts":
            return self._account(parts[1])
        if method == "GET" and parts == ["fee_stats"]:
            return json_response(200, {"last_ledger_base_fee": str(self.base_fee)})
        if method == "GET" and len(parts) == 2 and parts[0] == "transactions":
            return self._transaction(parts[1])
        if method == "POST" and parts == ["transactions"]:
            form = urllib.parse.parse_qs(body.decode("ascii", "replace"))
            result = self._submit((form.get("tx") or [""])[0])
            if result[0] == 400:
                codes = json.loads(result[2])["extras"]["result_codes"]
                with self._chain_lock:
                    self._refusals.append(codes["transaction"])
            return result
        return _not_found()

    def _account(self, address: str) -> HandlerResult:
        with self._chain_lock:
            account = self._accounts.get(address)
            if account is None and self.open_pioneer_accounts and self.platform is not None \
                    and self.platform.has_wallet(address):
                account = self._accounts[address] = _Account(sequence=0, balance=Decimal(0))
            if account is None:
                return _not_found()
            return json_response(200, {
                "id": address, "account_id": address, "sequence": str(account.sequence),
                "balances": [{"asset_type": "native", "balance": f"{account.balance:.7f}"}]})

    def _transaction(self, tx_hash: str) -> HandlerResult:
        with self._chain_lock:
            for landed in self._ledger:
                if landed.hash == tx_hash:
                    return json_response(200, self._describe(landed))
        return _not_found()

    @staticmethod
    def _describe(landed: LandedTransaction) -> dict[str, Any]:
        return {"hash": landed.hash, "ledger": landed.ledger, "successful": True,
                "memo_type": "text", "memo": landed.memo, "source_account": landed.source,
                "fee_charged": str(landed.fee), "envelope_xdr": landed.envelope_xdr}

    def _submit(self, envelope_xdr: str) -> HandlerResult:
        from stellar_sdk import Keypair, Payment, TextMemo, TransactionEnvelope
        from stellar_sdk.exceptions import BadSignatureError

        try:
            envelope = TransactionEnvelope.from_xdr(envelope_xdr, self.network_passphrase)
        except Exception:
            return _rejected("tx_malformed")
        tx = envelope.transaction
        source = tx.source.account_id
        operations = tx.operations
        with self._chain_lock:
            account = self._accounts.get(source)
            if account is None:
                return _rejected("tx_no_source_account")
            if tx.fee < self.base_fee * max(len(operations), 1):
                return _rejected("tx_insufficient_fee")
            if tx.sequence != account.sequence + 1:
                return _rejected("tx_bad_seq")
            bounds = tx.preconditions.time_bounds if tx.preconditions else None
            now = self.now()
            if bounds is not None and bounds.max_time and now > bounds.max_time:
                return _rejected("tx_too_late")
            if bounds is not None and now < bounds.min_time:
                return _rejected("tx_too_early")
            signer = Keypair.from_public_key(source)
            signed = False
            for signature in envelope.signatures:
                try:
                    signer.verify(envelope.hash(), signature.signature)
                    signed = True
                except BadSignatureError:
                    continue
            if not signed:
                return _rejected("tx_bad_auth")
            if len(operations) != 1 or not isinstance(operations[0], Payment) \
                    or not operations[0].asset.is_native():
                return _rejected("tx_failed", "op_not_supported")
            payment = operations[0]
            destination = payment.destination.account_id
            amount = Decimal(payment.amount)
            fee = self.base_fee * len(operations)
            account.sequence = tx.sequence  # a failed operation still consumes it
            account.balance -= fee * STROOPS
            receiver = self._accounts.get(destination)
            if receiver is None:
                return _rejected("tx_failed", "op_no_destination")
            if account.balance < amount:
                return _rejected("tx_failed", "op_underfunded")
            account.balance -= amount
            receiver.balance += amount
            memo = tx.memo.memo_text.decode() if isinstance(tx.memo, TextMemo) else ""
            landed = LandedTransaction(
                hash=envelope.hash_hex(), ledger=len(self._ledger) + 1, source=source,
                destination=destination, amount=amount, memo=memo, fee=fee,
                envelope_xdr=envelope_xdr)
            self._ledger.append(landed)
        self._tell_platform(landed)
        return json_response(200, self._describe(landed))

    def _tell_platform(self, landed: LandedTransaction) -> None:
        """The platform sees the payment named by the memo on the chain."""
        if self.platform is None or not landed.memo:
            return
        try:
            dto = self.platform.payment(landed.memo)
        except KeyError:
            return
        if dto["to_address"] == landed.destination and Decimal(str(dto["amount"])) == \
                landed.amount:
            self.platform.submit_transaction(landed.memo, landed.hash)

