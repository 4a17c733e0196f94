"""Storing what the Pi Platform says of a payment, and what follows from it once committed.

Every state change of a ``PiPayment`` is a conditional ``UPDATE`` from the states before
it (pending -> approved -> completed; pending or approved -> cancelled), so whichever
request records a step first wins it, and only the winner announces it: the payment
signals are sent once per payment, and a completion is delivered once, after the commit.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.module_loading import import_string

from .claims import RowClaims
from .conf import built_from_settings, piauth_settings
from .exceptions import PaymentForbidden, UpstreamUnavailable
from .models import PaymentDirection, Pioneer, PiPayment, Provider
from .models import PaymentStatus as Status
from .providers.payment_dto import SERVICE, PaymentDTO
from .signals import payment_approved, payment_cancelled, payment_completed

logger = logging.getLogger("django_piauth")

#: The claim on a payment's next step: a fetch, then a write, then (a lost answer, or a
#: refused payment's cancellation) one more call.
step_claims = RowClaims(PiPayment, "step_claimed", calls=3)

FINISHED = (Status.COMPLETED, Status.CANCELLED)


def status_of(dto: PaymentDTO) -> str:
    """The ``PiPayment.status`` the platform's flags amount to (completion wins: once
    completed, the money moved)."""
    if dto.status.developer_completed:
        return Status.COMPLETED
    if dto.status.any_cancelled:
        return Status.CANCELLED
    if dto.status.developer_approved:
        return Status.APPROVED
    return Status.PENDING


def dto_fields(dto: PaymentDTO) -> dict[str, Any]:
    """The columns copied from the platform's PaymentDTO (the status aside)."""
    return {
        "direction": dto.direction, "amount": dto.amount, "memo": dto.memo,
        "metadata": dto.metadata if dto.metadata is not None else {},
        "network": dto.network, "from_address": dto.from_address,
        "to_address": dto.to_address, "txid": dto.txid, "created_at": dto.created_at,
    }


def stored(identifier: str) -> PiPayment | None:
    return PiPayment.objects.select_related("pioneer").filter(identifier=identifier).first()


def pioneer_of(dto: PaymentDTO) -> Pioneer:
    """The Pi Pioneer the platform names as the payer (or payee)."""
    pioneer = Pioneer.objects.filter(provider=Provider.PI, uid=dto.user_uid).first()
    if pioneer is None:
        raise PaymentForbidden("No Pioneer of this app has this payment's uid.",
                               code="unknown_pioneer")
    return pioneer


def row_for(dto: PaymentDTO) -> tuple[PiPayment, bool]:
    """(the stored payment of ``dto``, False), or (a new ``pending`` row, True)."""
    existing = stored(dto.identifier)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return PiPayment.objects.create(identifier=dto.identifier, pioneer=pioneer_of(dto),
                                            status=Status.PENDING, **dto_fields(dto)), True
    except IntegrityError:  # a concurrent request inserted it first
        existing = stored(dto.identifier)
        if existing is None:
            raise
        return existing, False


def _same_payment(payment: PiPayment, dto: PaymentDTO) -> None:
    if dto.identifier != payment.identifier or dto.user_uid != payment.pioneer.uid:
        raise UpstreamUnavailable(f"{SERVICE} answered with another payment", service=SERVICE)


def record(payment: PiPayment, dto: PaymentDTO, request: HttpRequest | None) -> PiPayment:
    """Store ``dto`` on ``payment``; the steps this request moved it through are
    announced (and a completion delivered) after the commit. Returns the row as stored."""
    _same_payment(payment, dto)
    target, now, fields = status_of(dto), timezone.now(), dto_fields(dto)
    rows = PiPayment.objects.filter(pk=payment.pk)
    moved: list[Status] = []
    with transaction.atomic():
        if target in (Status.APPROVED, Status.COMPLETED) and rows.filter(
                status=Status.PENDING).update(status=Status.APPROVED, approved_at=now, **fields):
            moved.append(Status.APPROVED)
        if target == Status.COMPLETED and rows.filter(status=Status.APPROVED).update(
                status=Status.COMPLETED, completed_at=now, **fields):
            moved.append(Status.COMPLETED)
        if target == Status.CANCELLED and rows.filter(
                status__in=(Status.PENDING, Status.APPROVED)).update(
                status=Status.CANCELLED, cancelled_at=now, **fields):
            moved.append(Status.CANCELLED)
        if not moved:
            rows.update(**fields)
        if moved:
            transaction.on_commit(lambda: announce(payment.pk, moved, request))
    payment.refresh_from_db()
    return payment


_SIGNALS = {Status.APPROVED: payment_approved, Status.COMPLETED: payment_completed,
            Status.CANCELLED: payment_cancelled}


def announce(payment_pk: int, moved: list[Status], request: HttpRequest | None) -> None:
    """After the commit: deliver a completion, then send the signal of each step."""
    if Status.COMPLETED in moved:
        deliver(payment_pk, request)
    payment = PiPayment.objects.select_related("pioneer").get(pk=payment_pk)
    for step in moved:
        for _receiver, error in _SIGNALS[step].send_robust(
                sender=PiPayment, payment=payment, request=request):
            if isinstance(error, Exception):
                logger.error("A receiver of the %s signal of Pi payment %s raised",
                             step, payment.identifier, exc_info=error)


def _build_handler() -> Any:
    from .payments import PaymentHandler

    path = piauth_settings.PI_PAYMENT_HANDLER
    handler_class = import_string(path)
    if not (isinstance(handler_class, type) and issubclass(handler_class, PaymentHandler)):
        raise ImproperlyConfigured(f"PIAUTH['PI_PAYMENT_HANDLER'] ({path}) is not a "
                                   "subclass of django_piauth.payments.PaymentHandler.")
    return handler_class()


#: The app's ``PaymentHandler``, built from ``PIAUTH['PI_PAYMENT_HANDLER']``.
payment_handler = built_from_settings(_build_handler)


def deliver(payment_pk: int, request: HttpRequest | None) -> bool:
    """Run the handler's ``deliver`` for a completed, undelivered payment; True if it ran
    and succeeded.

    ``delivered_at`` is set by a conditional ``UPDATE`` in the same transaction as the
    handler's own writes: a concurrent delivery waits on that row and then finds it
    delivered, and a handler that raises rolls both back, leaving the payment for the
    settle command.
    """
    try:
        with transaction.atomic():
            # Only what a Pioneer paid for is delivered; a payout (app to user) never is.
            if not PiPayment.objects.filter(
                    pk=payment_pk, status=Status.COMPLETED, delivered_at__isnull=True,
                    direction=PaymentDirection.USER_TO_APP,
            ).update(delivered_at=timezone.now()):
                return False
            payment = PiPayment.objects.select_related("pioneer").get(pk=payment_pk)
            payment_handler().deliver(payment, request)
    except Exception:
        identifier = PiPayment.objects.filter(pk=payment_pk).values_list(
            "identifier", flat=True).first()
        logger.exception("The delivery of Pi payment %s failed; it stays completed and "
                         "undelivered, and piauth_pi_payments_settle retries it", identifier)
        return False
    return True
