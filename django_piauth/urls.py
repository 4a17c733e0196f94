from django.urls import path

from . import views

app_name = "piauth"

urlpatterns = [
    path("pi/login/", views.PiLoginView.as_view(), name="pi-login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
]
