"""The endpoints behind the Pi SDK's payment callbacks: POST, JSON or form, for a caller
signed in with Pi (``Authorization: Bearer``, or a ``pi-login`` session with CSRF).

They answer 200 with the stored payment, or 400/401/403/404/409 with a ``code``, or 503
with ``Retry-After``; the work is :mod:`django_piauth.payments`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import payments
from .drf import PiAuthentication, PiSessionAuthentication
from .exceptions import PaymentNotFound, PaymentRequestError, UpstreamError, UpstreamUnavailable
from .http_errors import retry_after_seconds
from .models import PiPayment
from .request_data import BadRequestBody, as_bad_body, request_data

if TYPE_CHECKING:
    from rest_framework.views import AsView, GenericView  # the stubs' types of as_view()

logger = logging.getLogger("django_piauth")

PAYMENTS_UNAVAILABLE = "The Pi Platform cannot be reached; try again shortly."


def payment_json(payment: PiPayment) -> dict[str, Any]:
    return {"identifier": payment.identifier, "status": payment.status,
            "amount": str(payment.amount), "txid": payment.txid or None,
            "delivered": payment.delivered_at is not None}


def _error(status: int, detail: str, code: str) -> Response:
    return Response({"detail": detail, "code": code}, status=status)


def _unavailable() -> Response:
    response = _error(503, PAYMENTS_UNAVAILABLE, "upstream_unavailable")
    response["Retry-After"] = str(retry_after_seconds())
    return response


class PaymentView(APIView):
    """A payment step for the signed-in Pioneer; subclasses say which (:meth:`step`)."""

    authentication_classes = [PiAuthentication, PiSessionAuthentication]
    permission_classes: list[Any] = []
    renderer_classes = [JSONRenderer]
    parser_classes: list[Any] = []  # the body is read by request_data, as sign-in does
    http_method_names = ["post", "options"]

    @classmethod
    def as_view(cls, **initkwargs: Any) -> AsView[GenericView]:
        # Each step commits its own short writes (claims must be seen by other
        # processes): never inside ATOMIC_REQUESTS' transaction.
        return transaction.non_atomic_requests(never_cache(super().as_view(**initkwargs)))

    def step(self, request: Request, uid: str, data: dict[str, Any],
             **kwargs: Any) -> PiPayment:
        raise NotImplementedError

    def handle_exception(self, exc: Exception) -> Response:
        """DRF's own answers (401 without credentials or with a rejected token, 403
        without the CSRF token, 503 from the authentication) carry a ``code`` too, like
        every other answer of these endpoints, and a body Django refuses to read is the
        JSON 400 ``bad_body``, not Django's HTML page (both found by the schema fuzzing)."""
        bad_body = as_bad_body(exc)  # Django refused the body (the CSRF check reads it)
        if bad_body is not None:
            return _error(400, str(bad_body), "bad_body")
        response = super().handle_exception(exc)
        if (isinstance(exc, exceptions.APIException) and isinstance(response.data, dict)
                and "code" not in response.data):
            codes = exc.get_codes()
            response.data["code"] = codes if isinstance(codes, str) else exc.default_code
        return response

    @sensitive_variables("data")
    def post(self, request: Request, **kwargs: Any) -> Response:
        uid = getattr(request.auth, "uid", None)
        if not isinstance(uid, str) or not uid:
            raise exceptions.NotAuthenticated("Sign in with Pi first.")
        try:
            data = request_data(request._request)
            payment = self.step(request, uid, data, **kwargs)
        except BadRequestBody as exc:
            return _error(400, str(exc), "bad_body")
        except PaymentRequestError as exc:
            return _error(exc.status, str(exc), exc.code)
        except PaymentNotFound:
            return _error(404, "The Pi Platform knows no payment with this id.",
                          "payment_not_found")
        except (UpstreamUnavailable, UpstreamError) as exc:
            logger.warning("Pi Platform unavailable during a payment step: %s", exc)
            return _unavailable()
        except ImproperlyConfigured as exc:  # no Server API Key, or no usable handler
            logger.error("Pi payments are not configured: %s", exc)
            return _unavailable()
        return Response(payment_json(payment))


class ApproveView(PaymentView):
    """``onReadyForServerApproval(paymentId)``."""

    def step(self, request: Request, uid: str, data: dict[str, Any],
             **kwargs: Any) -> PiPayment:
        return payments.approve(kwargs["payment_id"], uid=uid, request=request._request)


class CompleteView(PaymentView):
    """``onReadyForServerCompletion(paymentId, txid)``; body ``txid``."""

    def step(self, request: Request, uid: str, data: dict[str, Any],
             **kwargs: Any) -> PiPayment:
        return payments.complete(kwargs["payment_id"], data.get("txid"), uid=uid,
                                 request=request._request)


class CancelView(PaymentView):
    """``onCancel(paymentId)``."""

    def step(self, request: Request, uid: str, data: dict[str, Any],
             **kwargs: Any) -> PiPayment:
        return payments.cancel(kwargs["payment_id"], uid=uid, request=request._request)


class IncompleteView(PaymentView):
    """``onIncompletePaymentFound(payment)``; body ``payment`` (only its ``identifier``
    is read) or ``paymentId``."""

    def step(self, request: Request, uid: str, data: dict[str, Any],
             **kwargs: Any) -> PiPayment:
        return payments.resolve_incomplete(payments.incomplete_payment_id(data), uid=uid,
                                           request=request._request)
