from django.urls import path

from . import views

app_name = "piauth"

urlpatterns = [
    path("pi/login/", views.PiLoginView.as_view(), name="pi-login"),
    path("peerid/login/", views.PeerIDLoginView.as_view(), name="peerid-login"),
    path("peerid/authorize/", views.PeerIDAuthorizeView.as_view(), name="peerid-authorize"),
    path("peerid/callback/", views.PeerIDCallbackView.as_view(), name="peerid-callback"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
]
