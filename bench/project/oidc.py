"""mozilla-django-oidc against the fake Pi Platform: ``/v2/me`` as the userinfo endpoint.

Only the hooks the library documents for this are overridden: the claims are the fake's
``/v2/me`` answer, and its ``uid`` picks the user (``oidc-<uid>``), made on first sight.
``get_userinfo`` is the library's own: one ``GET /v2/me`` per request. A new user is made
with ``get_or_create(username=...)``, the usual way such a backend is written.
"""

from mozilla_django_oidc.auth import OIDCAuthenticationBackend


def _username(claims):
    return f"oidc-{claims['uid']}"


class PiOIDCBackend(OIDCAuthenticationBackend):
    def verify_claims(self, claims):
        return isinstance(claims.get("uid"), str) and bool(claims["uid"])

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(username=_username(claims))

    def create_user(self, claims):
        user, _created = self.UserModel.objects.get_or_create(username=_username(claims))
        return user
