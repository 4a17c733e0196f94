"""Linked accounts: one row per identity an upstream vouched for."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Provider(models.TextChoices):
    PI = "pi", "Pi Network"
    PEERID = "peerid", "PeerID"


class Pioneer(models.Model):
    """A Django user's link to an upstream identity, unique on (provider, uid).

    ``uid`` is the only thing that identifies the person; ``username`` is kept for
    display and follows upstream renames.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pioneers"
    )
    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.PI)
    uid = models.CharField(_("upstream uid"), max_length=255)
    username = models.CharField(max_length=150, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("Pioneer")
        constraints = [
            models.UniqueConstraint(fields=["provider", "uid"], name="piauth_unique_provider_uid"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.username or self.uid} ({self.get_provider_display()})"
