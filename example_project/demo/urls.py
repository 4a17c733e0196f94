from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from shop import views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/items/", views.SavedItemList.as_view(), name="api-items"),
    path("api/purchases/", views.PurchaseList.as_view(), name="api-purchases"),
    path("api/peerid/operation/", views.PeerIDDemoOperation.as_view(),
         name="api-peerid-operation"),
    path("rewards/pay/", views.PayReward.as_view(), name="pay-reward"),  # staff only
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),  # OpenAPI
    path("auth/", include("django_piauth.urls")),
    path("admin/", admin.site.urls),
]
