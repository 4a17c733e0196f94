from django.urls import path, register_converter

from . import payment_views, views


class AnyText:
    """Any text, line feeds included (``path`` stops at one: Django's HTML 404)."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyText, "piauth_any")

app_name = "piauth"

urlpatterns = [
    path("pi/login/", views.PiLoginView.as_view(), name="pi-login"),
    path("peerid/login/", views.PeerIDLoginView.as_view(), name="peerid-login"),
    path("peerid/authorize/", views.PeerIDAuthorizeView.as_view(), name="peerid-authorize"),
    path("peerid/callback/", views.PeerIDCallbackView.as_view(), name="peerid-callback"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    # <piauth_any:...>: any text reaches the view, which refuses an id that is not a plain
    # path segment (400) before any platform call.
    path("pi/payments/incomplete/", payment_views.IncompleteView.as_view(),
         name="pi-payment-incomplete"),
    path("pi/payments/<piauth_any:payment_id>/approve/", payment_views.ApproveView.as_view(),
         name="pi-payment-approve"),
    path("pi/payments/<piauth_any:payment_id>/complete/", payment_views.CompleteView.as_view(),
         name="pi-payment-complete"),
    path("pi/payments/<piauth_any:payment_id>/cancel/", payment_views.CancelView.as_view(),
         name="pi-payment-cancel"),
]
