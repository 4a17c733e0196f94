from django.urls import path

from . import payment_views, views

app_name = "piauth"

urlpatterns = [
    path("pi/login/", views.PiLoginView.as_view(), name="pi-login"),
    path("peerid/login/", views.PeerIDLoginView.as_view(), name="peerid-login"),
    path("peerid/authorize/", views.PeerIDAuthorizeView.as_view(), name="peerid-authorize"),
    path("peerid/callback/", views.PeerIDCallbackView.as_view(), name="peerid-callback"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    # <path:...>: any text reaches the view, which refuses an id that is not a plain
    # path segment (400) before any platform call.
    path("pi/payments/incomplete/", payment_views.IncompleteView.as_view(),
         name="pi-payment-incomplete"),
    path("pi/payments/<path:payment_id>/approve/", payment_views.ApproveView.as_view(),
         name="pi-payment-approve"),
    path("pi/payments/<path:payment_id>/complete/", payment_views.CompleteView.as_view(),
         name="pi-payment-complete"),
    path("pi/payments/<path:payment_id>/cancel/", payment_views.CancelView.as_view(),
         name="pi-payment-cancel"),
]
