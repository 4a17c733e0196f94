from django.contrib import admin
from django.urls import include, path

from tests.testapp.views import WhoAmI

urlpatterns = [
    path("admin/", admin.site.urls),
    path("auth/", include("django_piauth.urls")),
    path("api/whoami/", WhoAmI.as_view(), name="whoami"),
]
