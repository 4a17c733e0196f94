"""drf-spectacular extensions: the package's authentication classes as OpenAPI security
schemes, and the payment endpoints as they really answer.

Installed with the ``openapi`` extra (``pip install django-piauth[openapi]``); the app's
``ready()`` imports this module when drf-spectacular is installed, which is all
drf-spectacular needs to find the extensions. Nothing else imports it, so the package
works the same without drf-spectacular.

The security schemes:

``PiBearer``
    ``Authorization: Bearer <Pi access token>`` (:class:`~django_piauth.drf.PiAuthentication`).
``PiSession``
    the session cookie of a ``piauth:pi-login`` sign-in, CSRF enforced
    (:class:`~django_piauth.drf.PiSessionAuthentication`).
``PeerIDSession``
    the session cookie of a PeerID sign-in, CSRF enforced
    (:class:`~django_piauth.drf.PeerIDAuthentication`).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers

from .conf import piauth_settings

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView

__all__ = [
    "PaymentViewScheme",
    "PeerIDSessionScheme",
    "PiBearerScheme",
    "PiSessionScheme",
    "authentication_responses",
    "error_serializer",
    "payment_responses",
    "response_headers",
]


# Each extension below registers itself through its base class's ``__init_subclass__``,
# which drf-spectacular leaves unannotated: hence the narrow ``no-untyped-call`` ignores.


def _csrf_header() -> str:
    """``settings.CSRF_HEADER_NAME`` as a client sends it (``HTTP_X_CSRFTOKEN``:
    ``X-CSRFToken``)."""
    name = settings.CSRF_HEADER_NAME
    if name == "HTTP_X_CSRFTOKEN":
        return "X-CSRFToken"
    name = name.removeprefix("HTTP_")
    return "-".join(part.capitalize() for part in name.split("_"))


def _session_scheme(how: str) -> dict[str, Any]:
    return {
        "type": "apiKey",
        "in": "cookie",
        "name": settings.SESSION_COOKIE_NAME,
        "description": (
            f"The Django session cookie of a {how}. CSRF protection stays on: unsafe "
            f"methods (POST, PUT, PATCH, DELETE) also send the `{_csrf_header()}` header "
            f"with the value of the `{settings.CSRF_COOKIE_NAME}` cookie, or get 403."
        ),
    }


class PiBearerScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """:class:`django_piauth.drf.PiAuthentication` (and subclasses): HTTP bearer."""

    target_class = "django_piauth.drf.PiAuthentication"
    match_subclasses = True
    name = "PiBearer"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "Pi access token",
            "description": (
                "`Authorization: Bearer <Pi access token>`: the `accessToken` that the Pi "
                "SDK's `Pi.authenticate` gives the page. The server verifies it with the "
                "Pi Platform (`GET /v2/me`); the Pioneer's identity comes from that answer "
                "only. A malformed or rejected token: 401 with `WWW-Authenticate`; the Pi "
                "Platform unreachable: 503 with `Retry-After`."
            ),
        }


class PiSessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """:class:`django_piauth.drf.PiSessionAuthentication`: the ``pi-login`` session."""

    target_class = "django_piauth.drf.PiSessionAuthentication"
    match_subclasses = True
    name = "PiSession"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return _session_scheme("Pi sign-in (`POST` of the `Pi.authenticate` access token "
                               "to `piauth:pi-login`)")


class PeerIDSessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """:class:`django_piauth.drf.PeerIDAuthentication`: a PeerID session, refreshed."""

    target_class = "django_piauth.drf.PeerIDAuthentication"
    match_subclasses = True
    name = "PeerIDSession"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return _session_scheme(
            "PeerID sign-in (`piauth:peerid-login` or the authorization-code flow). Its "
            "PeerID tokens are refreshed when due: a dead refresh token ends the session "
            "(401), PeerID unreachable gives 503 with `Retry-After` and keeps the session"
        )


# The payment endpoints (django_piauth.payment_views): what they read and answer. Each
# component is made once: drf-spectacular tells two serializers of one name apart by
# their class.

@cache
def _payment() -> serializers.Serializer[Any]:
    return inline_serializer("PiPaymentState", fields={
        "identifier": serializers.CharField(help_text="The Pi Platform's payment id."),
        "status": serializers.CharField(
            help_text="The stored payment's status: `approved`, `completed`, `cancelled` "
                      "(payouts add their own steps)."),
        "amount": serializers.CharField(help_text="The amount in Pi, as a decimal string."),
        "txid": serializers.CharField(allow_null=True,
                                      help_text="The blockchain transaction, once known."),
        "delivered": serializers.BooleanField(
            help_text="Whether the app's handler has delivered what was paid for."),
    })


@cache
def error_serializer() -> serializers.Serializer[Any]:
    """``{"detail": ..., "code": ...}``: how django-piauth's endpoints (and DRF) refuse."""
    return inline_serializer("PiAuthError", fields={
        "detail": serializers.CharField(help_text="What went wrong, for people."),
        "code": serializers.CharField(
            required=False,
            help_text="What went wrong, for programs: e.g. `bad_body`, `bad_payment_id`, "
                      "`not_yours`, `payment_not_found`, `cancelled`, "
                      "`upstream_unavailable`. DRF's own refusals (no credentials, a "
                      "rejected token, a missing CSRF token) carry `detail` only."),
    })


#: What ``payments.checked_id`` accepts (``providers.pi.path_segment``): anything else is a
#: 400 ``bad_payment_id`` before any platform call.
PAYMENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"


@cache
def _completion_body() -> serializers.Serializer[Any]:
    from .payments import MAX_TXID_LENGTH

    return inline_serializer("PiPaymentCompletion", fields={
        "txid": serializers.RegexField(
            rf"^[A-Za-z0-9]{{1,{MAX_TXID_LENGTH}}}$",
            help_text="The blockchain transaction id the Pi SDK passed to the callback "
                      "(letters and digits); another value is a 400 `bad_txid`."),
    })


def _incomplete_body() -> dict[str, Any]:
    """``paymentId`` or ``payment.identifier``, one of them required: a raw schema, as
    a serializer cannot say "one of"."""
    payment_id = {"type": "string", "pattern": PAYMENT_ID_PATTERN}
    return {
        "type": "object",
        "properties": {
            "paymentId": {**payment_id, "description": "The payment's id (or send "
                                                       "`payment`)."},
            "payment": {"type": "object", "properties": {"identifier": payment_id},
                        "required": ["identifier"],
                        "description": "The PaymentDTO the Pi SDK passed to the callback; "
                                       "only its `identifier` is read."},
        },
        "anyOf": [{"required": ["payment"]}, {"required": ["paymentId"]}],
        "description": "Neither: a 400 `bad_payment_id`.",
    }


def response_headers() -> list[OpenApiParameter]:
    """``WWW-Authenticate`` on a 401, ``Retry-After`` on a 503: for ``extend_schema``'s
    ``parameters`` of a view authenticated with the package's classes."""
    return [
        OpenApiParameter(
            "WWW-Authenticate", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
            response=[401],
            description=f"`Bearer realm=\"{piauth_settings.WWW_AUTHENTICATE_REALM}\"`."),
        OpenApiParameter(
            "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, required=True,
            response=[503],
            description="Seconds to wait before trying again (`PIAUTH['RETRY_AFTER']`)."),
    ]


def authentication_responses() -> dict[int, OpenApiResponse]:
    """What any view authenticated with the package's classes may answer besides its own
    responses: 401 (no or a rejected credential), 403 (a session request without its
    CSRF token), 503 (the identity service cannot say). For ``extend_schema``'s
    ``responses``, with :func:`response_headers` as its ``parameters``."""
    error = error_serializer()
    return {
        401: OpenApiResponse(error, description="No credentials, a malformed or rejected "
                                                "access token, or a session that ended."),
        403: OpenApiResponse(error, description="Not allowed; or a session request "
                                                "without its CSRF token."),
        503: OpenApiResponse(error, description="The identity service (Pi Platform, "
                                                "PeerID) cannot be reached; try again "
                                                "after `Retry-After` seconds."),
    }


def payment_responses() -> dict[int, OpenApiResponse]:
    """The responses every payment step documents."""
    error = error_serializer()
    return {
        200: OpenApiResponse(_payment(), description="The stored payment, after the step."),
        400: OpenApiResponse(error, description="A body that is not a JSON object or a "
                                                "form, a payment id that is not a plain "
                                                "path segment, a missing or malformed "
                                                "`txid`."),
        401: OpenApiResponse(error, description="Not signed in with Pi, or a malformed or "
                                                "rejected access token."),
        403: OpenApiResponse(error, description="Another Pioneer's payment, an app-to-user "
                                                "payment, an unknown Pioneer, or a session "
                                                "request without its CSRF token."),
        404: OpenApiResponse(error, description="The Pi Platform knows no payment with "
                                                "this id."),
        409: OpenApiResponse(error, description="The payment's state does not allow the "
                                                "step (`code` says which), or the app's "
                                                "handler refused it (`refused`)."),
        503: OpenApiResponse(error, description="The Pi Platform cannot be reached (or "
                                                "payments are not configured); try again "
                                                "after `Retry-After` seconds."),
    }


def _body(body: serializers.Serializer[Any] | dict[str, Any]) -> dict[str, Any]:
    return {"application/json": body, "application/x-www-form-urlencoded": body,
            "multipart/form-data": body}


def _step_schema(view: type[APIView]) -> dict[str, Any]:
    from .payment_views import ApproveView, CancelView, CompleteView, IncompleteView

    body: serializers.Serializer[Any] | dict[str, Any] = {
        "type": "object", "description": "Not read: any JSON object or form, or none."}
    summary = (view.__doc__ or "").strip().split("\n")[0]
    if issubclass(view, CompleteView):
        summary = "Complete a payment (onReadyForServerCompletion)"
        body = _completion_body()
    elif issubclass(view, IncompleteView):
        summary = "Resolve an incomplete payment (onIncompletePaymentFound)"
        body = _incomplete_body()
    elif issubclass(view, ApproveView):
        summary = "Approve a payment (onReadyForServerApproval)"
    elif issubclass(view, CancelView):
        summary = "Cancel a payment (onCancel)"
    parameters = response_headers()
    if issubclass(view, (ApproveView, CompleteView, CancelView)):
        parameters.append(OpenApiParameter(
            "payment_id", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=PAYMENT_ID_PATTERN,
            description="The Pi Platform's payment id (`paymentId` of the SDK's callback): "
                        "1 to 128 letters, digits, `-` and `_`; another value is a 400 "
                        "`bad_payment_id`."))
    return {
        "summary": summary,
        "description": (view.__doc__ or "").strip() or None,
        "request": _body(body),
        "responses": payment_responses(),
        "parameters": parameters,
        "tags": ["pi-payments"],
    }


class PaymentViewScheme(OpenApiViewExtension):  # type: ignore[no-untyped-call]
    """:class:`django_piauth.payment_views.PaymentView` and its steps, documented as they
    answer: 200 with the stored payment, 400/401/403/404/409 with a ``detail`` and a
    ``code``, 503 with ``Retry-After``; a JSON or form body."""

    target_class = "django_piauth.payment_views.PaymentView"
    match_subclasses = True

    def view_replacement(self) -> type[APIView]:
        from .payment_views import PaymentView

        view: type[PaymentView] = self.target
        original = view.post

        # A function of its own: annotating the inherited ``post`` would annotate the one
        # function all the steps share.
        @extend_schema(**_step_schema(view))
        def post(self: PaymentView, request: Request, **kwargs: Any) -> Response:
            return original(self, request, **kwargs)

        return type(view.__name__, (view,), {
            "post": post, "__module__": view.__module__, "__qualname__": view.__qualname__,
            "__doc__": view.__doc__})
