"""Pi payouts, app to user: pay a Pioneer from the app wallet, exactly once.

The steps of Pi's integration guide, each recorded on the ``PiPayment`` before the next
starts, so a crash anywhere resumes (``resume``, the settle command) and never pays twice:

1. ``created``: ``POST /v2/payments`` answered; the row is inserted.
2. ``signed``: the transaction (one native payment to ``to_address``, text memo = the
   payment's identifier, time bounds of :data:`TX_TIMEOUT` seconds) is built, signed with
   the app wallet's seed and stored (``tx_envelope``, ``txid`` = its hash) *before* it is
   submitted.
3. ``submitted``: Horizon has it on the chain (submitted now, or found by its hash).
4. ``completed``: ``POST /v2/payments/{id}/complete`` with that txid answered
   ``developer_completed``.

A stored transaction is looked up by its hash before anything is submitted or signed
anew: one on the chain is completed, never paid again; one whose time bounds passed and
that is not on the chain can never land, and is signed anew. One transaction is in flight
per app wallet across processes: steps 2-3 run under the wallet's lease (a claim row,
:class:`~django_piauth.models.PayoutWallet`, renewed between calls and taken over when
its holder dies), so concurrent payouts queue instead of failing on sequence numbers.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .claims import RowClaims, new_holder
from .conf import piauth_settings
from .exceptions import (
    PaymentAlreadyCompleted,
    PaymentCancelled,
    PaymentError,
    PiAuthError,
    UpstreamUnavailable,
)
from .models import PaymentDirection, PayoutWallet, Pioneer, PiPayment, Provider
from .models import PaymentStatus as Status
from .payment_records import dto_fields
from .providers.horizon import SERVICE as HORIZON
from .providers.horizon import HorizonRejected, account_id, get_horizon_client
from .providers.payment_dto import SERVICE, PaymentDTO, parse_amount
from .providers.pi import get_pi_client
from .stellar import app_wallet, stellar_sdk

logger = logging.getLogger("django_piauth")

#: Seconds a signed payout transaction may land in (its time bounds).
TX_TIMEOUT = 180
#: Seconds past its time bounds after which a transaction not on the chain is signed anew
#: (the clocks of Horizon and this server may differ a little).
TX_EXPIRY_MARGIN = 10
#: Seconds ``pay`` waits for the wallet's lease while other payouts go first.
LEASE_WAIT = 120.0
#: Transactions one ``resume`` signs at most (a stale sequence number, then a fresh one).
MAX_SIGNINGS = 3
#: A Stellar text memo holds 28 bytes: Pi's payment identifiers fit.
MAX_MEMO_BYTES = 28

#: Renewed before each step; a step makes at most four Horizon calls (``_submit``: look
#: the transaction up, the recipient, submit, look it up again after a refusal).
_leases = RowClaims(PayoutWallet, "lease", calls=4)
_UNFINISHED = (Status.CREATED, Status.SIGNED, Status.SUBMITTED)


class PayoutError(PiAuthError):
    """A payout cannot go on as asked; the message says why (never the seed)."""


class PayoutRecipientMissing(PayoutError):
    """The Pioneer's wallet account does not exist on the chain: nothing was submitted
    (no fee lost); the payout is cancelled at the platform."""


# Starting ------------------------------------------------------------------------------

def pay(pioneer: Pioneer, amount: Any, memo: str, metadata: Any = None) -> PiPayment:
    """Create, submit and complete an app-to-user payment of ``amount`` Pi (a ``Decimal``)
    to ``pioneer``; the completed ``PiPayment``.

    Raises ``PayoutError`` (``PayoutRecipientMissing``), ``PaymentError`` for a platform
    refusal (``OngoingPaymentFound``: finish the Pioneer's unfinished payout first, with
    the settle command), ``UpstreamUnavailable`` (the payment stays where it got to and
    the settle command finishes it), ``ImproperlyConfigured`` (no seed, no stellar-sdk).
    Call it outside ``transaction.atomic()``: each step must commit.
    """
    if not isinstance(amount, Decimal):
        raise TypeError("amount is a Decimal (Pi has 7 decimal places)")
    try:
        amount = parse_amount(format(amount, "f"))
    except UpstreamUnavailable:
        raise ValueError(f"{amount} is not a Pi amount (positive, at most 7 places)") from None
    if pioneer.provider != Provider.PI:
        raise ValueError("payouts go to Pi Pioneers")
    wallet = app_wallet()
    dto = get_pi_client().create_payment(pioneer.uid, amount, memo,
                                         metadata if metadata is not None else {})
    _check_created(dto, pioneer, amount, wallet.public_key)
    payment = _insert(dto, pioneer)
    return resume(payment)


def _check_created(dto: PaymentDTO, pioneer: Pioneer, amount: Decimal | None,
                   wallet_address: str) -> None:
    problems = []
    if dto.direction != PaymentDirection.APP_TO_USER:
        problems.append("is not app-to-user")
    if dto.user_uid != pioneer.uid:
        problems.append("names another Pioneer")
    if amount is not None and dto.amount != amount:
        problems.append(f"is for {dto.amount} Pi, not {amount}")
    try:
        account_id(dto.to_address)
    except ValueError:
        problems.append("pays no valid Pi address")
    if dto.from_address != wallet_address:
        problems.append("is paid from another wallet than PIAUTH['PI_WALLET_SEED']'s")
    if dto.network != piauth_settings.PI_NETWORK:
        problems.append(f"is on {dto.network!r}, not PIAUTH['PI_NETWORK']")
    if len(dto.identifier.encode()) > MAX_MEMO_BYTES:
        problems.append("has an identifier longer than a transaction memo holds")
    if problems:
        raise PayoutError(f"{SERVICE} payout {dto.identifier} " + "; ".join(problems) + ".")


def _insert(dto: PaymentDTO, pioneer: Pioneer, status: str = Status.CREATED) -> PiPayment:
    try:
        with transaction.atomic():
            return PiPayment.objects.create(identifier=dto.identifier, pioneer=pioneer,
                                            status=status, **dto_fields(dto))
    except IntegrityError:  # stored meanwhile (the settle command found it too)
        return PiPayment.objects.select_related("pioneer").get(identifier=dto.identifier)


# Resuming ------------------------------------------------------------------------------

def resume(payment: PiPayment) -> PiPayment:
    """Bring a stored payout to its end from whatever step it reached."""
    payment = PiPayment.objects.select_related("pioneer").get(pk=payment.pk)
    if payment.status in (Status.COMPLETED, Status.CANCELLED):
        return payment
    if payment.status in (Status.CREATED, Status.SIGNED):
        with _WalletLease(payment.from_address) as lease:
            # What was read before the wait may be stale: another holder may have signed
            # anew meanwhile. Act on the row as it is now.
            payment.refresh_from_db()
            signings = 0
            while payment.status in (Status.CREATED, Status.SIGNED):
                lease.renew()
                if payment.status == Status.CREATED:
                    if signings == MAX_SIGNINGS:  # a Horizon that refuses whatever we sign
                        raise PayoutError(f"Pi payout {payment.identifier}: Horizon refused "
                                          f"{signings} transactions in a row; left to the "
                                          "settle command.")
                    signings += 1
                    payment = _sign(payment)
                else:
                    payment = _submit(payment)
    if payment.status == Status.SUBMITTED:
        payment = _complete(payment)
    return payment


class _WalletLease:
    """The app wallet's lease, waited for (up to :data:`LEASE_WAIT`), renewed between
    calls, released on the way out."""

    def __init__(self, address: str) -> None:
        self.wallet, _created = PayoutWallet.objects.get_or_create(address=address)
        self.holder = new_holder()

    def __enter__(self) -> _WalletLease:
        give_up, pause = time.monotonic() + LEASE_WAIT, 0.01
        while not _leases.try_claim(self.wallet.pk, self.holder):
            if time.monotonic() > give_up:
                raise UpstreamUnavailable("other payouts hold the app wallet; try again",
                                          service=SERVICE)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)  # a freed lease is taken within 50 ms
        return self

    def renew(self) -> None:
        if not _leases.renew(self.wallet.pk, self.holder):
            raise UpstreamUnavailable("the app wallet's lease was taken over (this payout "
                                      "took too long); the settle command resumes it",
                                      service=SERVICE)

    def __exit__(self, *exc_info: object) -> None:
        _leases.release(self.wallet.pk, self.holder)


def _advance(payment: PiPayment, from_status: str, **changes: Any) -> PiPayment:
    """Record a step: a conditional update from ``from_status`` and the transaction this
    process knows, so a step is recorded once whoever else resumes the payout, and a stale
    view of it (another holder signed anew meanwhile) changes nothing."""
    PiPayment.objects.filter(pk=payment.pk, status=from_status,
                             txid=payment.txid).update(**changes)
    payment.refresh_from_db()
    return payment


def _sign(payment: PiPayment) -> PiPayment:
    """Step 2: build and sign the transaction, and store it before it is submitted."""
    sdk = stellar_sdk()
    horizon = get_horizon_client()
    if horizon.account(payment.to_address) is None:
        _cancel_missing_recipient(payment)
    source = horizon.account(payment.from_address)
    if source is None:
        raise PayoutError("The app wallet's account does not exist on the chain.")
    fee = horizon.base_fee()
    wallet = app_wallet()
    valid_until = timezone.now() + timedelta(seconds=TX_TIMEOUT)
    envelope = (sdk.TransactionBuilder(sdk.Account(wallet.public_key, source.sequence),
                                       network_passphrase=piauth_settings.PI_NETWORK,
                                       base_fee=fee)
                .append_payment_op(payment.to_address, sdk.Asset.native(),
                                   format(payment.amount, "f"))
                .add_text_memo(payment.identifier)
                .add_time_bounds(0, int(valid_until.timestamp()))
                .build())
    envelope.sign(wallet)
    return _advance(payment, Status.CREATED, status=Status.SIGNED, txid=envelope.hash_hex(),
                    tx_envelope=envelope.to_xdr(), tx_valid_until=valid_until)


def _expired(payment: PiPayment) -> bool:
    until = payment.tx_valid_until
    return until is not None and timezone.now() > until + timedelta(seconds=TX_EXPIRY_MARGIN)


def _sign_anew(payment: PiPayment, why: str) -> PiPayment:
    logger.info("Pi payout %s: its transaction %s %s; signing it anew", payment.identifier,
                payment.txid, why)
    return _advance(payment, Status.SIGNED, status=Status.CREATED, txid="", tx_envelope="",
                    tx_valid_until=None)


def _submit(payment: PiPayment) -> PiPayment:
    """Step 3: the stored transaction on the chain, looked up before it is submitted."""
    horizon = get_horizon_client()
    landed = horizon.transaction(payment.txid)
    if landed is not None and landed.successful:
        return _advance(payment, Status.SIGNED, status=Status.SUBMITTED)
    if _expired(payment):
        return _sign_anew(payment, "can no longer land")
    if horizon.account(payment.to_address) is None:
        _cancel_missing_recipient(payment)
    try:
        horizon.submit(payment.tx_envelope, payment.txid)
    except HorizonRejected as refused:
        landed = horizon.transaction(payment.txid)
        if landed is not None and landed.successful:  # an earlier submission landed it
            return _advance(payment, Status.SIGNED, status=Status.SUBMITTED)
        if "op_no_destination" in refused.operation_codes:
            _cancel_missing_recipient(payment)
        if refused.transaction_code in ("tx_bad_seq", "tx_too_late"):
            # Its sequence number is used, or its time is up: it cannot land now, but an
            # earlier submission may have landed it while the Horizon asked does not show
            # it yet (indexing, a lagging node). Signed anew only once it has expired and
            # still is not found; until then, left for the settle command.
            if _expired(payment):
                return _sign_anew(payment, f"was refused ({refused.transaction_code})")
            raise UpstreamUnavailable(
                f"Horizon refused transaction {payment.txid} ({refused.transaction_code}) "
                "but does not show it landed; the payout waits for it to expire",
                service=HORIZON) from None
        _sign_anew(payment, f"was refused ({refused})")
        raise PayoutError(f"Pi payout {payment.identifier}: {refused}") from None
    return _advance(payment, Status.SIGNED, status=Status.SUBMITTED)


def _cancel_missing_recipient(payment: PiPayment) -> None:
    try:
        get_pi_client().cancel_payment(payment.identifier)
        cancelled = True
    except PaymentCancelled:
        cancelled = True
    except PaymentError as exc:
        logger.warning("Pi payout %s: cancelling at the platform failed: %s",
                       payment.identifier, exc)
        cancelled = False
    if cancelled:
        PiPayment.objects.filter(pk=payment.pk, status__in=_UNFINISHED).update(
            status=Status.CANCELLED, cancelled_at=timezone.now(), tx_envelope="")
    raise PayoutRecipientMissing(
        f"Pi payout {payment.identifier}: the Pioneer's wallet account does not exist on "
        "the chain; nothing was submitted.")


def _complete(payment: PiPayment) -> PiPayment:
    """Step 4: tell the platform the txid; completed once it says ``developer_completed``."""
    try:
        dto = get_pi_client().complete_payment(payment.identifier, payment.txid)
    except PaymentAlreadyCompleted as exc:
        dto = exc.payment if isinstance(exc.payment, PaymentDTO) else \
            get_pi_client().get_payment(payment.identifier)
    if not dto.status.developer_completed or dto.txid not in ("", payment.txid):
        raise UpstreamUnavailable(f"{SERVICE} answered a payout completion without "
                                  "completing it", service=SERVICE)
    return _advance(payment, Status.SUBMITTED, status=Status.COMPLETED,
                    completed_at=timezone.now())


# The settle command --------------------------------------------------------------------

def settle_payouts() -> list[str]:
    """Every stored payout not completed, and every payout the platform lists as
    incomplete, brought to an end; a line each."""
    actions: list[str] = []
    client = get_pi_client()
    try:
        listed = client.incomplete_server_payments()
    except (PaymentError, UpstreamUnavailable) as exc:
        listed = []
        actions.append(f"incomplete payouts at the platform: not listed ({exc})")
    wallet_address = app_wallet().public_key
    for dto in listed:
        if PiPayment.objects.filter(identifier=dto.identifier).exists():
            continue
        pioneer = Pioneer.objects.filter(provider=Provider.PI, uid=dto.user_uid).first()
        if pioneer is None:
            actions.append(f"{dto.identifier}: no Pioneer with uid {dto.user_uid}; left")
            continue
        try:
            _check_created(dto, pioneer, None, wallet_address)
        except PayoutError as exc:
            actions.append(f"{dto.identifier}: left ({exc})")
            continue
        # A transaction the platform already sees is completed, never paid again.
        if dto.transaction is not None and not dto.transaction.verified:
            actions.append(f"{dto.identifier}: left (its transaction is not verified yet)")
            continue
        _insert(dto, pioneer, Status.SUBMITTED if dto.transaction else Status.CREATED)
        actions.append(f"{dto.identifier}: found at the platform, stored")
    unfinished = PiPayment.objects.filter(direction=PaymentDirection.APP_TO_USER,
                                          status__in=_UNFINISHED).order_by("pk")
    for payment in unfinished.iterator():
        before = payment.status
        try:
            after = resume(payment).status
        except (PayoutError, PaymentError, UpstreamUnavailable) as exc:
            actions.append(f"{payment.identifier}: payout left {before} ({exc})")
            continue
        actions.append(f"{payment.identifier}: payout {before} -> {after}")
    return actions
