"""The server half of Pi payments, user to app: approve, complete, cancel, recover.

Each function takes the payment id a client sent and the caller's verified Pi ``uid``
(``None`` only for the app's own code acting for nobody, such as the settle command:
then ownership is not checked), fetches the payment from the platform, and stores in
``PiPayment`` only what the platform says. Every field comes from its PaymentDTO.

Idempotent and race-free without holding a database lock across a platform call: a step
that writes at the platform is *claimed* first (a short committed write, see
:mod:`.claims`), the platform is called, and the outcome is recorded by conditional
updates (:mod:`.payment_records`). A caller that finds the step claimed waits up to
``PIAUTH['PI_PAYMENT_WAIT']`` seconds for it to end, then answers what it found or
``PaymentConflict("in_progress")`` so that the Pi SDK retries. Call these functions
outside ``transaction.atomic()``: a claim must commit to be seen by other processes.

Outcomes: a ``PiPayment``; ``PaymentInputInvalid`` (400), ``PaymentForbidden`` (403),
``PaymentNotFound`` (404: unknown to the platform), ``PaymentConflict`` (409, with a
``code``), ``UpstreamUnavailable`` (503: nothing was recorded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from .claims import new_holder
from .conf import piauth_settings
from .exceptions import (
    PaymentAlreadyApproved,
    PaymentAlreadyCompleted,
    PaymentCancelled,
    PaymentConflict,
    PaymentError,
    PaymentForbidden,
    PaymentInputInvalid,
    PaymentNotFound,
    PaymentRefused,
    TransactionNotVerified,
    TxidMismatch,
    UpstreamUnavailable,
)
from .models import PaymentDirection, PiPayment
from .models import PaymentStatus as Status
from .payment_records import (
    FINISHED,
    deliver,
    payment_handler,
    record,
    row_for,
    status_of,
    step_claims,
    stored,
)
from .payouts import pay
from .providers.payment_dto import SERVICE, PaymentDTO
from .providers.pi import get_pi_client, path_segment

__all__ = ["PaymentHandler", "PaymentRefused", "approve", "cancel", "complete", "pay",
           "refresh", "resolve_incomplete", "settle"]

logger = logging.getLogger("django_piauth")

#: The longest txid accepted from a client (a Stellar hash is 64 hex digits).
MAX_TXID_LENGTH = 255


class PaymentHandler:
    """The app's say in its payments: subclass it and name the subclass in
    ``PIAUTH['PI_PAYMENT_HANDLER']``.

    Both methods get the ``PiPayment`` as the platform describes it (amount, memo,
    metadata: never the client's) and the request (``None`` from the settle command).
    """

    def check(self, payment: PiPayment, request: HttpRequest | None) -> None:
        """Before approval: raise ``PaymentRefused(reason)`` to refuse the payment (it is
        then cancelled at the platform). The default approves every payment."""

    def deliver(self, payment: PiPayment, request: HttpRequest | None) -> None:
        """After the completion is committed, once per payment: hand over what was paid
        for. It runs in a transaction with the write of ``delivered_at``: if it raises,
        its database writes roll back, the payment stays undelivered and the settle
        command retries it. The default delivers nothing."""


# Input ---------------------------------------------------------------------------------

def checked_id(payment_id: Any) -> str:
    try:
        return path_segment(payment_id)
    except ValueError as exc:
        raise PaymentInputInvalid(f"Invalid payment id: {exc}.", code="bad_payment_id") from None


def checked_txid(txid: Any) -> str:
    if (not isinstance(txid, str) or not txid or len(txid) > MAX_TXID_LENGTH
            or not all(ch.isascii() and ch.isalnum() for ch in txid)):
        raise PaymentInputInvalid("txid is required: the blockchain transaction's id "
                                  "(letters and digits).", code="bad_txid")
    return txid


def incomplete_payment_id(data: Any) -> str:
    """The id in an ``onIncompletePaymentFound`` body: ``{"payment": {"identifier": ...}}``
    or ``{"paymentId": ...}``. Nothing else of it is read."""
    if isinstance(data, dict):
        payment = data.get("payment")
        if isinstance(payment, dict) and "identifier" in payment:
            return checked_id(payment["identifier"])
        if "paymentId" in data:
            return checked_id(data["paymentId"])
    raise PaymentInputInvalid("The body must carry payment.identifier or paymentId.",
                              code="bad_payment_id")


# Who may act ---------------------------------------------------------------------------

def _check_party(user_uid: str, direction: str, uid: str | None) -> None:
    """The caller (``uid``; None: nobody to check) may act on a user-to-app payment of
    ``user_uid``'s."""
    if uid is not None and user_uid != uid:
        raise PaymentForbidden("This payment is another Pioneer's.", code="not_yours")
    if direction != PaymentDirection.USER_TO_APP:
        raise PaymentForbidden("This is an app-to-user payment.", code="not_user_to_app")


def _check_caller(dto: PaymentDTO, uid: str | None) -> None:
    _check_party(dto.user_uid, dto.direction, uid)


def _check_owner(payment: PiPayment, uid: str | None) -> None:
    _check_party(payment.pioneer.uid, payment.direction, uid)


# Platform calls ------------------------------------------------------------------------

def _fetch(payment_id: str) -> PaymentDTO:
    try:
        dto = get_pi_client().get_payment(payment_id)
    except PaymentNotFound:
        raise
    except PaymentError as exc:
        raise _refusal(exc) from None
    if dto.identifier != payment_id:
        raise UpstreamUnavailable(f"{SERVICE} answered with another payment", service=SERVICE)
    return dto


def _refusal(exc: PaymentError) -> Exception:
    """A platform refusal nobody expected: 409 with its code, or 503 when the platform
    refused *us* (a wrong Server API Key is the app's outage, not the Pioneer's fault)."""
    if exc.status in (401, 403):
        logger.error("The Pi Platform refused the Server API Key: %s", exc)
        return UpstreamUnavailable(f"{SERVICE} refused the Server API Key", service=SERVICE)
    return PaymentConflict(f"The Pi Platform refused: {exc.code or exc.status}.",
                           code=exc.code or "refused_by_platform")


def _known(exc: PaymentError, fallback: PaymentDTO) -> PaymentDTO:
    """The payment an error body carried, else ``fallback``."""
    payment = exc.payment
    return payment if isinstance(payment, PaymentDTO) else fallback


def _flagged(dto: PaymentDTO, **flags: bool) -> PaymentDTO:
    return replace(dto, status=replace(dto.status, **flags))


# Claims --------------------------------------------------------------------------------

def _claim(payment: PiPayment, holder: str, claimable: tuple[str, ...]) -> PiPayment | None:
    """Claim ``payment``'s next step while its status is one of ``claimable``: None once
    claimed, or the row as another holder left it once it is no longer claimable.
    Raises ``PaymentConflict("in_progress")`` after ``PI_PAYMENT_WAIT`` seconds."""
    give_up = time.monotonic() + piauth_settings.PI_PAYMENT_WAIT
    pause = 0.02
    while True:
        if step_claims.try_claim(payment.pk, holder, status__in=claimable):
            payment.refresh_from_db()
            return None
        payment.refresh_from_db()
        if payment.status not in claimable:
            return payment
        if time.monotonic() >= give_up:
            raise PaymentConflict("Another request is handling this payment; try again.",
                                  code="in_progress")
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


class _Step:
    """``with _Step(payment, claimable) as done:`` ``done`` is None when this request
    holds the claim (released on the way out), else the row another request finished.

    ``discard``: the row was inserted by this request; if the step fails it is deleted
    (while still ``pending`` and ours), so that a platform fault leaves nothing stored.
    The platform remains the record: a retry fetches the payment again.
    """

    def __init__(self, payment: PiPayment, claimable: tuple[str, ...], *,
                 discard: bool = False) -> None:
        self.payment, self.claimable, self.holder = payment, claimable, new_holder()
        self.claimed, self.discard = False, discard

    def __enter__(self) -> PiPayment | None:
        done = _claim(self.payment, self.holder, self.claimable)
        self.claimed = done is None
        return done

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if not self.claimed:
            return
        if exc_type is not None and self.discard and step_claims.held_by(
                self.payment.pk, self.holder).filter(status=Status.PENDING).delete()[0]:
            return
        step_claims.release(self.payment.pk, self.holder)


# Answers -------------------------------------------------------------------------------

def _approved(payment: PiPayment) -> PiPayment:
    if payment.status == Status.CANCELLED:
        raise PaymentConflict("This payment was cancelled.", code="cancelled")
    if payment.status == Status.PENDING:
        raise PaymentConflict("The approval is still under way; try again.",
                              code="in_progress")
    return payment


def _completed(payment: PiPayment, txid: str | None) -> PiPayment:
    if payment.status == Status.CANCELLED:
        raise PaymentConflict("This payment was cancelled.", code="cancelled")
    if payment.status != Status.COMPLETED:
        raise PaymentConflict("The completion is still under way; try again.",
                              code="in_progress")
    if txid is not None and payment.txid != txid:
        raise _txid_mismatch()
    return payment


def _cancelled(payment: PiPayment) -> PiPayment:
    if payment.status == Status.COMPLETED:
        raise PaymentConflict("This payment is completed: its money moved.", code="completed")
    if payment.status != Status.CANCELLED:
        raise PaymentConflict("The cancellation is still under way; try again.",
                              code="in_progress")
    return payment


# Steps under a claim -------------------------------------------------------------------

def _txid_mismatch() -> PaymentConflict:
    return PaymentConflict("This txid is not the payment's transaction.", code="txid_mismatch")


def _transaction_pending() -> PaymentConflict:
    return PaymentConflict("The blockchain transaction is not verified yet; try again.",
                           code="transaction_pending")


def _write(call: Callable[[], PaymentDTO], dto: PaymentDTO, *, reached: tuple[str, ...],
           what: str) -> PaymentDTO:
    """One platform write (``call``) for the payment ``dto`` describes: the payment as the
    platform then shows it, which must have ``reached`` one of these statuses.

    A refusal saying the payment is past this step already (approved, completed,
    cancelled: our earlier answer was lost, or the Pioneer acted) is no error: it is the
    payment's state, recorded like an answer.
    """
    try:
        answered = call()
    except PaymentAlreadyApproved as exc:
        answered = _known(exc, _flagged(dto, developer_approved=True))
    except PaymentCancelled as exc:
        answered = _known(exc, _flagged(dto, cancelled=True))
    except PaymentAlreadyCompleted as exc:
        answered = exc.payment if isinstance(exc.payment, PaymentDTO) else _fetch(
            dto.identifier)
    except TxidMismatch:
        raise _txid_mismatch() from None
    except TransactionNotVerified:
        raise _transaction_pending() from None
    except PaymentNotFound:
        raise
    except PaymentError as exc:
        raise _refusal(exc) from None
    if status_of(answered) not in reached:  # e.g. a 200 without developer_completed
        raise UpstreamUnavailable(f"{SERVICE} answered {what} without doing it",
                                  service=SERVICE)
    return answered


_PAST_APPROVAL = (Status.APPROVED, *FINISHED)


def _approve_claimed(payment: PiPayment, dto: PaymentDTO,
                     request: HttpRequest | None) -> PiPayment:
    try:
        payment_handler().check(payment, request)
    except PaymentRefused as refusal:
        logger.info("Pi payment %s refused by the app: %s", payment.identifier, refusal.reason)
        record(payment, _cancel_at_platform(dto), request)
        raise PaymentConflict(refusal.reason, code="refused") from None
    approved = _write(lambda: get_pi_client().approve_payment(payment.identifier), dto,
                      reached=_PAST_APPROVAL, what="an approval")
    return record(payment, approved, request)


def _complete_claimed(payment: PiPayment, dto: PaymentDTO, txid: str | None,
                      request: HttpRequest | None) -> PiPayment:
    """Complete with the platform's txid (``txid``, if given, must equal it)."""
    if status_of(dto) in FINISHED:  # the platform already shows it finished
        return _completed(record(payment, dto, request), txid)
    transaction = dto.transaction
    if transaction is None or not transaction.verified:
        raise _transaction_pending()
    if txid is not None and transaction.txid != txid:
        raise _txid_mismatch()
    done = _write(lambda: get_pi_client().complete_payment(payment.identifier,
                                                           transaction.txid),
                  dto, reached=FINISHED, what="a completion")
    return _completed(record(payment, done, request), txid)


def _cancel_at_platform(dto: PaymentDTO) -> PaymentDTO:
    return _write(lambda: get_pi_client().cancel_payment(dto.identifier), dto,
                  reached=FINISHED, what="a cancellation")


def _cancel_claimed(payment: PiPayment, dto: PaymentDTO,
                    request: HttpRequest | None) -> PiPayment:
    if status_of(dto) not in FINISHED:
        if dto.transaction is not None:
            raise PaymentConflict("This payment has a blockchain transaction: its money "
                                  "moved; complete it instead.", code="transaction_exists")
        dto = _cancel_at_platform(dto)
    return _cancelled(record(payment, dto, request))


# The API -------------------------------------------------------------------------------

def approve(payment_id: Any, *, uid: str | None,
            request: HttpRequest | None = None) -> PiPayment:
    """``onReadyForServerApproval``: check the payment, ask the app's handler, approve
    it at the platform and store it. One GET and one POST; a retry: at most one GET."""
    payment_id = checked_id(payment_id)
    payment = stored(payment_id)
    if payment is not None:
        _check_owner(payment, uid)
        if payment.status != Status.PENDING:
            return _approved(payment)
    dto = _fetch(payment_id)
    _check_caller(dto, uid)
    inserted = False
    if payment is None:
        payment, inserted = row_for(dto)
    if status_of(dto) != Status.PENDING:  # approved (or ended) already: record, no write
        return _approved(record(payment, dto, request))
    with _Step(payment, (Status.PENDING,), discard=inserted) as done:
        if done is not None:
            return _approved(done)
        return _approved(_approve_claimed(payment, dto, request))


def complete(payment_id: Any, txid: Any, *, uid: str | None,
             request: HttpRequest | None = None) -> PiPayment:
    """``onReadyForServerCompletion``: complete an approved payment whose verified
    transaction at the platform is ``txid``, then deliver it once."""
    payment_id, txid = checked_id(payment_id), checked_txid(txid)
    payment = stored(payment_id)
    if payment is not None:
        _check_owner(payment, uid)
    prefetched: PaymentDTO | None = None
    if payment is None or payment.status == Status.PENDING:
        # Approved elsewhere, or our approval's outcome was never recorded (a crash
        # between the platform's answer and our write): the platform says.
        prefetched = _fetch(payment_id)
        _check_caller(prefetched, uid)
        payment = record(payment or row_for(prefetched)[0], prefetched, request)
    if payment.status in FINISHED:
        return _completed(payment, txid)
    if payment.status == Status.PENDING:
        raise PaymentConflict("This payment is not approved.", code="not_approved")
    with _Step(payment, (Status.APPROVED,)) as done:
        if done is not None:
            return _completed(done, txid)
        dto = prefetched or _fetch(payment_id)
        return _complete_claimed(payment, dto, txid, request)


def cancel(payment_id: Any, *, uid: str | None,
           request: HttpRequest | None = None) -> PiPayment:
    """``onCancel``: the Pioneer gave up. Cancelled at the platform unless it has a
    transaction (409 ``transaction_exists``: complete it instead)."""
    payment_id = checked_id(payment_id)
    payment = stored(payment_id)
    if payment is not None:
        _check_owner(payment, uid)
        if payment.status in FINISHED:
            return _cancelled(payment)
    return _bring_to_end(payment_id, payment, uid, request, cancel_only=True)


def resolve_incomplete(payment_id: Any, *, uid: str | None,
                       request: HttpRequest | None = None) -> PiPayment:
    """``onIncompletePaymentFound``: a verified transaction is completed with the
    platform's txid (and delivered); a payment without one is cancelled so the Pioneer
    can pay again; one whose transaction is not verified yet is 409
    ``transaction_pending``."""
    payment_id = checked_id(payment_id)
    payment = stored(payment_id)
    if payment is not None:
        _check_owner(payment, uid)
        if payment.status in FINISHED:
            return payment
    return _bring_to_end(payment_id, payment, uid, request)


def _bring_to_end(payment_id: str, payment: PiPayment | None, uid: str | None,
                  request: HttpRequest | None, *, settle_unpaid: bool = True,
                  cancel_only: bool = False) -> PiPayment:
    """Claim the payment's next step, fetch it and finish it: complete a verified
    transaction, cancel a payment without one (when ``settle_unpaid``), else record what
    the platform says. ``cancel_only``: the Pioneer gave up; never complete."""
    prefetched: PaymentDTO | None = None
    inserted = False
    if payment is None:
        prefetched = _fetch(payment_id)
        _check_caller(prefetched, uid)
        payment, inserted = row_for(prefetched)
    with _Step(payment, (Status.PENDING, Status.APPROVED), discard=inserted) as done:
        if done is not None:
            return _cancelled(done) if cancel_only else done
        dto = prefetched or _fetch(payment_id)
        if cancel_only:
            return _cancel_claimed(payment, dto, request)
        if status_of(dto) in FINISHED:
            return record(payment, dto, request)
        transaction = dto.transaction
        if transaction is not None:
            if transaction.verified:
                return _complete_claimed(payment, dto, None, request)
            raise _transaction_pending()
        if settle_unpaid:
            return _cancel_claimed(payment, dto, request)
        return record(payment, dto, request)


def refresh(payment_id: Any, *, request: HttpRequest | None = None) -> PiPayment:
    """Store what the platform says of a payment now (the admin's action). Writes
    nothing at the platform."""
    payment_id = checked_id(payment_id)
    payment = stored(payment_id)
    if payment is not None and payment.direction == PaymentDirection.APP_TO_USER:
        # A payout's steps (its signed transaction) are the settle command's to resume.
        raise PaymentForbidden("A payout is resumed by piauth_pi_payments_settle, not "
                               "refreshed.", code="not_user_to_app")
    dto = _fetch(payment_id)
    _check_caller(dto, None)
    return record(payment or row_for(dto)[0], dto, request)


# The settle command --------------------------------------------------------------------

def settle(*, age: float | None = None) -> list[str]:
    """Bring every stored user-to-app payment not finished to an end, as
    :func:`resolve_incomplete` does (one without a transaction only once it is older than
    ``age`` seconds, default ``PI_PAYMENT_SETTLE_AGE``: the Pioneer may still be
    signing), and retry undelivered completed payments. Returns what it did, a line each.
    """
    age = piauth_settings.PI_PAYMENT_SETTLE_AGE if age is None else age
    old_before = timezone.now() - timedelta(seconds=age)
    actions: list[str] = []
    undelivered = list(PiPayment.objects.filter(  # before this run's own deliveries
        status=Status.COMPLETED, delivered_at__isnull=True,
        direction=PaymentDirection.USER_TO_APP).order_by("pk").values_list(
        "pk", "identifier"))
    unfinished = PiPayment.objects.filter(
        status__in=(Status.PENDING, Status.APPROVED),
        direction=PaymentDirection.USER_TO_APP).order_by("pk")
    for payment in unfinished.iterator():
        born = payment.created_at or payment.recorded_at
        before = payment.status
        try:
            after = _bring_to_end(payment.identifier, stored(payment.identifier), None, None,
                                  settle_unpaid=born <= old_before).status
        except PaymentConflict as exc:
            actions.append(f"{payment.identifier}: left {before} ({exc.code})")
            continue
        except (PaymentError, UpstreamUnavailable) as exc:
            actions.append(f"{payment.identifier}: left {before} (Pi Platform: {exc})")
            continue
        change = f"left {after}" if after == before else f"{before} -> {after}"
        actions.append(f"{payment.identifier}: {change}")
    for pk, identifier in undelivered:
        outcome = "delivered" if deliver(pk, None) else "delivery failed again (logged)"
        actions.append(f"{identifier}: {outcome}")
    return actions
