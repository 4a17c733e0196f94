from django.contrib import admin
from django.urls import include, path

from tests.testapp.views import PayPioneer, PeerIDOperations, PeerIDThenRefuse, WhoAmI, home

urlpatterns = [
    path("admin/", admin.site.urls),
    path("auth/", include("django_piauth.urls")),
    path("api/whoami/", WhoAmI.as_view(), name="whoami"),
    path("api/peerid/operations/", PeerIDOperations.as_view(), name="peerid-operations"),
    path("api/peerid/refuse/", PeerIDThenRefuse.as_view(), name="peerid-refuse"),
    path("home/", home, name="home"),
    path("api/test/pay/", PayPioneer.as_view(), name="test-pay"),
]
