from django.conf import settings
from django.db import models


class SavedItem(models.Model):
    """Something a signed-in Pioneer saved; owned by the Django user their Pioneer links to."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_items"
    )
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name


class Purchase(models.Model):
    """What a Pioneer bought with Pi: one per delivered payment, made by
    ``shop.payments.ShopPayments.deliver`` once the Pi Platform confirmed the completion."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="purchases"
    )
    # The Pi identity that paid (a user may link more than one).
    pioneer = models.ForeignKey(
        "django_piauth.Pioneer", on_delete=models.PROTECT, related_name="purchases"
    )
    payment_identifier = models.CharField(max_length=255, unique=True)
    item = models.CharField(max_length=50)  # a key of shop.payments.CATALOGUE
    amount = models.DecimalField(max_digits=30, decimal_places=7)  # Pi, as the platform says
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.item} for {self.amount.normalize():f} Pi"
