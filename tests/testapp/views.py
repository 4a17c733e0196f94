from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from django_piauth.untrusted_json import NotJSON, loads


class UntrustedJSONParser(JSONParser):
    """DRF's JSONParser lets json's RecursionError (deeply nested JSON) through as a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return loads(stream.read())
        except NotJSON as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


class WhoAmI(APIView):
    """A DRF view protected by the default classes (PiAuthentication)."""

    def get(self, request):
        identity = request.auth
        return Response({
            "user": request.user.get_username(),
            "uid": identity.uid,
            "username": identity.username,
            "scopes": list(identity.scopes),
            "auth_type": type(identity).__name__,
        })


@login_required
def home(request):
    """An ordinary Django page for signed-in users."""
    return HttpResponse(f"Hello {request.user.get_username()}")


class PeerIDOperations(APIView):
    """Makes a token call for the signed-in PeerID user, refreshing once on a 401."""

    parser_classes = [UntrustedJSONParser]

    def post(self, request):
        from django_piauth.peerid import peerid_operations

        data = request.data
        operations = data.get("operations") if isinstance(data, dict) else None
        if not isinstance(operations, list) or not all(isinstance(o, dict) for o in operations):
            raise ParseError("operations must be a list of objects")
        result = peerid_operations(request._request.peerid_credential, operations,
                                   request=request._request)
        return Response({"result": result})


class PeerIDThenRefuse(APIView):
    """Authenticates (PeerIDAuthentication may refresh), makes the token calls asked for
    (refreshing once on a 401), then fails: a 400 from a ValidationError (DRF rolls the
    request's transaction back) or, with ``"raise": true``, an exception (a 500)."""

    def post(self, request):
        from rest_framework.exceptions import ValidationError

        from django_piauth.peerid import peerid_operations

        if request.data.get("operations"):
            peerid_operations(request._request.peerid_credential,
                              request.data["operations"], request=request._request)
        if request.data.get("raise"):
            raise RuntimeError("the view failed after the refresh")
        raise ValidationError({"detail": "refused after the refresh"})


class PayPioneer(APIView):
    """The app paying a Pioneer (test-only, no authentication): ``{"uid", "amount"}``."""

    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request):
        from decimal import Decimal

        from django_piauth.models import Pioneer
        from django_piauth.payments import pay

        pioneer = Pioneer.objects.get(provider="pi", uid=request.data["uid"])
        payment = pay(pioneer, Decimal(request.data["amount"]), "A reward")
        return Response({"identifier": payment.identifier, "status": payment.status,
                         "txid": payment.txid})
