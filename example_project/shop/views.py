from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods
from rest_framework import generics

from django_piauth.conf import piauth_settings
from django_piauth.models import Provider

from .forms import SavedItemForm
from .serializers import SavedItemSerializer


@ensure_csrf_cookie  # the page's JS posts to piauth:pi-login with X-CSRFToken
@require_http_methods(["GET", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    """The Pi Browser's login-free visit, played with the fake Pi Platform.

    Signed out: the "Sign in with Pi (demo)" button. Signed in: the Pioneer, their saved
    items and a form (POST here) to add one.
    """
    user = request.user
    form = SavedItemForm()
    if request.method == "POST":
        if not user.is_authenticated:
            messages.error(request, "Sign in first.")
            return redirect("home")
        form = SavedItemForm(request.POST)
        if form.is_valid():
            item = form.save(commit=False)
            item.owner = user
            item.save()
            messages.success(request, f"Saved “{item.name}”.")
            return redirect("home")
    pioneer = None
    items = []
    if user.is_authenticated:
        pioneer = user.pioneers.filter(provider=Provider.PI).order_by("-last_verified_at").first()
        items = list(user.saved_items.all()[:50])
    return render(
        request,
        "shop/home.html",
        {
            "pioneer": pioneer,
            "items": items,
            "form": form,
            "pi_api_url": piauth_settings.PI_API_URL,
        },
    )


class SavedItemList(generics.ListCreateAPIView):
    """``GET``: the caller's saved items. ``POST {"name": ...}``: save one.

    Authenticated by the project's defaults: ``Authorization: Bearer <Pi access token>``
    (PiAuthentication) or the session the page signed in (SessionAuthentication, CSRF on).
    """

    serializer_class = SavedItemSerializer
    pagination_class = None

    def get_queryset(self):
        return self.request.user.saved_items.all()

    def perform_create(self, serializer: SavedItemSerializer) -> None:
        serializer.save(owner=self.request.user)
