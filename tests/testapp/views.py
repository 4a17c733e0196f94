from rest_framework.response import Response
from rest_framework.views import APIView


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
