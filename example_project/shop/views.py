import secrets
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import logout
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_piauth.conf import piauth_settings
from django_piauth.drf import PI_UID_SESSION_KEY, ServiceUnavailable
from django_piauth.exceptions import (
    InvalidToken,
    PaymentError,
    PeerIDSessionEnded,
    UpstreamError,
    UpstreamUnavailable,
)
from django_piauth.models import PaymentDirection, Pioneer, PiPayment, Provider
from django_piauth.openapi import authentication_responses, error_serializer, response_headers
from django_piauth.payments import pay
from django_piauth.payouts import PayoutError
from django_piauth.peerid import peerid_operations

from .forms import SavedItemForm
from .payments import CATALOGUE
from .serializers import PurchaseSerializer, SavedItemSerializer


@ensure_csrf_cookie  # the page's JS posts to piauth:pi-login with X-CSRFToken
@require_http_methods(["GET", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    """The Pi Browser's login-free visit, played with the fake Pi Platform, and PeerID
    sign-in, played with the fake PeerID.

    Signed out: the "Sign in with Pi (demo)" button, the PeerID sign-in form and the
    PeerID authorization-code link. Signed in: the Pioneer of the session's provider,
    the PeerID status of a PeerID session, their saved items and a form (POST here) to
    add one. A session from ``piauth:pi-login`` also gets the shop: buy a sticker for Pi,
    with the page's JavaScript playing the Pi SDK's ``Pi.createPayment`` against the fake,
    and the Pioneer's purchases.
    """
    user = request.user
    form = SavedItemForm()
    if request.method == "POST":
        if not user.is_authenticated:
            messages.error(request, "Sign in first.")
            return redirect("home")
        form = SavedItemForm(request.POST)
        if form.is_valid():
            item = form.save(commit=False)
            item.owner = user
            item.save()
            messages.success(request, f"Saved “{item.name}”.")
            return redirect("home")
    # Set by PeerIDRefreshMiddleware (refreshed if it was due) for a PeerID session only.
    credential = getattr(request, "peerid_credential", None)
    # The uid the Pi Platform vouched for at pi-login: what the payment endpoints trust.
    pi_uid = request.session.get(PI_UID_SESSION_KEY) if user.is_authenticated else None
    pioneer = None
    items = []
    purchases = []
    if credential is not None:
        pioneer = credential.pioneer
    elif user.is_authenticated:
        pi_pioneers = user.pioneers.filter(provider=Provider.PI)
        pioneer = ((pi_pioneers.filter(uid=pi_uid).first() if pi_uid else None)
                   or pi_pioneers.order_by("-last_verified_at").first())
    rewards = []
    if user.is_authenticated:
        items = list(user.saved_items.all()[:50])
        purchases = list(user.purchases.all()[:50])
        rewards = list(PiPayment.objects.filter(
            pioneer__user=user, direction=PaymentDirection.APP_TO_USER)[:50])
    pi_session = bool(credential is None and pioneer is not None and pioneer.uid == pi_uid)
    return render(
        request,
        "shop/home.html",
        {
            "pioneer": pioneer,
            "peerid_credential": credential,  # the template shows its status, never a token
            "items": items,
            "form": form,
            "pi_session": pi_session,  # the shop: buying needs a pi-login session
            "purchases": PurchaseSerializer(purchases, many=True).data,
            "rewards": rewards,  # payouts to this user's Pioneers
            "sticker": CATALOGUE["sticker"],
            "pi_api_url": piauth_settings.PI_API_URL,
            "peerid_url": piauth_settings.PEERID_URL,
        },
    )


#: What the demo button asks PeerID to do: one Peerplays transfer (the fake echoes it).
DEMO_OPERATIONS = [{
    "op_name": "transfer",
    "to": "demo-shop",
    "amount": {"amount": 1, "asset_id": "1.3.0"},
    "memo": "django-piauth demo",
}]


#: What the API views may answer besides their own results (the schema at /api/schema/):
#: 401 with WWW-Authenticate, 403, 503 with Retry-After from the authentication classes,
#: 400 for a body DRF cannot parse, 415 for a media type it has no parser for.
API_ERRORS = {
    **authentication_responses(),
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="A body that cannot be parsed, "
                                                          "or fields that are not valid "
                                                          "(one list of messages each)."),
    415: OpenApiResponse(error_serializer(), description="A body of a media type the "
                                                         "view does not read."),
}


@extend_schema(
    request={"application/json": {"type": "object", "properties": {
        "simulate_401": {"type": "boolean", "description": "DEMO ONLY: make PeerID "
                                                          "answer 401 first."}}}},
    responses={
        200: OpenApiResponse(OpenApiTypes.OBJECT, description="PeerID's answer (`result`), "
                             "whether the tokens were refreshed, and their expiry and scope."),
        **API_ERRORS,
        502: OpenApiResponse(error_serializer(), description="PeerID refused the operation "
                                                             "or the refreshed token."),
    },
    parameters=response_headers(),
)
class PeerIDDemoOperation(APIView):
    """``POST``: a demo operation with the PeerID session's token (``peerid_operations``).

    The call refreshes the tokens once and retries once when PeerID answers 401. DEMO
    ONLY: ``{"simulate_401": true}`` first overwrites the stored access token with a
    made-up one, so that PeerID answers 401 and the refresh-and-retry shows. Only a
    PeerID session may call it (``PeerIDAuthentication`` enforces CSRF); never returns a
    token.
    """

    def post(self, request: Request) -> Response:
        # Set by PeerIDRefreshMiddleware (or PeerIDAuthentication) for a PeerID session.
        credential = getattr(request, "peerid_credential", None)
        if credential is None:
            raise exceptions.PermissionDenied("Sign in with PeerID to make PeerID calls.",
                                              code="not_peerid")
        data = request.data if isinstance(request.data, dict) else {}
        if data.get("simulate_401") is True:
            # DEMO ONLY: as if PeerID had revoked the access token behind our back.
            credential.access_token = f"demo-stale-{secrets.token_urlsafe(24)}"
            credential.save(update_fields=["access_token"])
        refreshed_before = credential.last_refreshed_at
        try:
            result = peerid_operations(credential, DEMO_OPERATIONS, request=request._request)
        except PeerIDSessionEnded:
            logout(request._request)
            raise exceptions.AuthenticationFailed(
                "Your PeerID session has ended; sign in again.", code="session_ended"
            ) from None
        except UpstreamUnavailable:
            raise ServiceUnavailable(wait=int(piauth_settings.RETRY_AFTER)) from None
        except InvalidToken:  # 401 again after a refresh: the next request refreshes anew
            return Response({"detail": "PeerID rejected the access token even after a "
                                       "refresh; try again.", "code": "peerid_rejected"},
                            status=502)
        except UpstreamError as exc:  # PeerID refused the operation itself (a 4xx)
            error = exc.body.get("error") if isinstance(exc.body, dict) else None
            return Response({"detail": "PeerID refused the operation.", "code": "peerid_error",
                             "peerid_status": exc.status, "peerid_error": error}, status=502)
        return Response({
            "result": result,
            "refreshed": credential.last_refreshed_at != refreshed_before,
            "expires_at": credential.expires_at,
            "last_refreshed_at": credential.last_refreshed_at,
            "scope": credential.scope,
        })


@extend_schema_view(
    get=extend_schema(responses={200: SavedItemSerializer(many=True),
                                 **authentication_responses()},
                      parameters=response_headers()),
    post=extend_schema(responses={201: SavedItemSerializer, **API_ERRORS},
                       parameters=response_headers()),
)
class SavedItemList(generics.ListCreateAPIView):
    """``GET``: the caller's saved items. ``POST {"name": ...}``: save one.

    Authenticated by the project's defaults: ``Authorization: Bearer <Pi access token>``
    (PiAuthentication) or the session the page signed in (SessionAuthentication, CSRF on).
    """

    serializer_class = SavedItemSerializer
    pagination_class = None

    def get_queryset(self):
        return self.request.user.saved_items.all()

    def perform_create(self, serializer: SavedItemSerializer) -> None:
        serializer.save(owner=self.request.user)


@extend_schema(responses={200: PurchaseSerializer(many=True), **authentication_responses()},
               parameters=response_headers())
class PurchaseList(generics.ListAPIView):
    """``GET``: what the caller bought with Pi, newest first (``shop.payments`` makes the
    rows). Authenticated as ``SavedItemList``: a Pi access token as a Bearer, or the
    page's session."""

    serializer_class = PurchaseSerializer
    pagination_class = None

    def get_queryset(self):
        return self.request.user.purchases.all()


@method_decorator(transaction.non_atomic_requests, name="dispatch")
@method_decorator(staff_member_required, name="dispatch")
class PayReward(View):
    """Staff only: pay a Pioneer a reward from the app wallet (``payments.pay``), through
    the fake Horizon. Each step of the payout commits on its own: never inside
    ATOMIC_REQUESTS."""

    def get(self, request: HttpRequest) -> HttpResponse:
        pioneers = Pioneer.objects.filter(provider=Provider.PI).order_by("username")
        return render(request, "shop/reward.html", {"pioneers": pioneers})

    def post(self, request: HttpRequest) -> HttpResponse:
        pioneer = Pioneer.objects.filter(provider=Provider.PI,
                                         pk=request.POST.get("pioneer")).first()
        try:
            amount = Decimal(request.POST.get("amount", ""))
        except InvalidOperation:
            amount = None
        if pioneer is None or amount is None:
            messages.error(request, "Choose a Pioneer and an amount.")
            return redirect("pay-reward")
        try:
            payment = pay(pioneer, amount, "Demo reward")
        except (ValueError, PayoutError, PaymentError, UpstreamUnavailable) as exc:
            messages.error(request, f"The reward was not paid: {exc}")
            return redirect("pay-reward")
        messages.success(request, f"Paid {payment.amount} Pi to {pioneer.username} "
                                  f"(transaction {payment.txid[:12]}…).")
        return redirect("pay-reward")
