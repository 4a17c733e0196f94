from django.urls import path

from . import views

urlpatterns = [
    path("floor", views.Floor.as_view()),
    path("drf-token", views.DRFToken.as_view()),
    path("oidc", views.MozillaOIDC.as_view()),
    path("pi", views.Pi.as_view()),
]
