"""The same tiny JSON view behind each authentication class."""

from mozilla_django_oidc.contrib.drf import OIDCAuthentication
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from django_piauth.drf import PiAuthentication


class Floor(APIView):
    """No authentication: what the stack costs without it."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"ok": True})


class DRFToken(Floor):
    """``Authorization: Token <key>``: one query for a Token row and its user."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]


class MozillaOIDC(DRFToken):
    """``Authorization: Bearer <token>``: ``GET /v2/me`` on every request, then a query."""

    authentication_classes = [OIDCAuthentication]


class Pi(DRFToken):
    """``Authorization: Bearer <token>``: django_piauth, with the cache PIAUTH names."""

    authentication_classes = [PiAuthentication]
