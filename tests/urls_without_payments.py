"""A site that signs in with Pi but takes no payments."""

from django.urls import include, path

from django_piauth import views

urlpatterns = [
    path("auth/", include(([path("pi/login/", views.PiLoginView.as_view(), name="pi-login")],
                           "piauth"))),
]
