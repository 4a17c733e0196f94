"""Linked accounts: one row per identity an upstream vouched for."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .fields import EncryptedTextField


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


class PeerIDCredential(models.Model):
    """The PeerID tokens of a PeerID Pioneer, encrypted at rest.

    ``needs_refresh`` is set when PeerID answered 401 to a call made with the access
    token; the refresh middleware and DRF class then refresh before the next view runs.
    A revoked credential (``revoked_at``) has no tokens left: its sessions end.
    ``refresh_claimed_by`` / ``refresh_claimed_until``: who is refreshing it and until
    when that claim holds (see :mod:`django_piauth.refresh_claim`).
    """

    pioneer = models.OneToOneField(
        Pioneer, on_delete=models.CASCADE, related_name="peerid_credential"
    )
    access_token = EncryptedTextField()
    refresh_token = EncryptedTextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    scope = models.JSONField(default=list, blank=True)
    needs_refresh = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    refresh_claimed_by = models.CharField(max_length=32, blank=True, default="")
    refresh_claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("PeerID credential")

    def __str__(self) -> str:
        return f"PeerID credential of {self.pioneer}"

    def __repr__(self) -> str:  # never the tokens
        return f"<PeerIDCredential pk={self.pk} pioneer={self.pioneer_id}>"


class SafeGrant(models.Model):
    """A SAFE Launcher's authorization of this Django project (the app), token encrypted."""

    launcher_url = models.URLField()
    app_id = models.CharField(max_length=255)
    app_name = models.CharField(max_length=255)
    app_version = models.CharField(max_length=64)
    app_vendor = models.CharField(max_length=255)
    token = EncryptedTextField(blank=True)
    permissions_requested = models.JSONField(default=list, blank=True)
    permissions_granted = models.JSONField(default=list, blank=True)
    authorized_at = models.DateTimeField()
    last_checked_at = models.DateTimeField(null=True, blank=True)
    is_valid = models.BooleanField(default=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("SAFE grant")
        constraints = [
            models.UniqueConstraint(
                fields=["launcher_url", "app_id", "app_vendor"], name="piauth_unique_safe_app"
            ),
        ]

    def __str__(self) -> str:
        state = "valid" if self.is_valid else "dead"
        return f"{self.app_name} at {self.launcher_url} ({state})"

    def __repr__(self) -> str:  # never the token
        return f"<SafeGrant pk={self.pk} app_id={self.app_id!r} valid={self.is_valid}>"


class PaymentStatus(models.TextChoices):
    #: The approval is claimed and under way; the platform has not confirmed it yet.
    PENDING = "pending", _("approval under way")
    APPROVED = "approved", _("approved")
    #: Payouts (app to user): created at the platform, no transaction signed yet.
    CREATED = "created", _("payout created")
    #: Payouts: the transaction is signed and stored (``tx_envelope``), maybe submitted.
    SIGNED = "signed", _("payout signed")
    #: Payouts: the transaction is on the chain (``txid``); the platform not yet told.
    SUBMITTED = "submitted", _("payout on the chain")
    COMPLETED = "completed", _("completed")
    CANCELLED = "cancelled", _("cancelled")


class PaymentDirection(models.TextChoices):
    USER_TO_APP = "user_to_app", _("user to app")
    APP_TO_USER = "app_to_user", _("app to user")


class PiPayment(models.Model):
    """A Pi payment as the Pi Platform describes it, linked to the paying ``Pioneer``.

    Every field but the claim and ``delivered_at`` is copied from the platform's
    PaymentDTO, never from the client. ``step_claimed_by`` / ``step_claimed_until``:
    who is running the payment's next platform call and until when that claim holds
    (see :mod:`django_piauth.claims`).
    """

    identifier = models.CharField(max_length=255, unique=True)
    pioneer = models.ForeignKey(Pioneer, on_delete=models.PROTECT, related_name="payments")
    direction = models.CharField(max_length=16, choices=PaymentDirection.choices)
    amount = models.DecimalField(max_digits=30, decimal_places=7)
    memo = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    network = models.CharField(max_length=64, blank=True)
    from_address = models.CharField(max_length=255, blank=True)
    to_address = models.CharField(max_length=255, blank=True)
    txid = models.CharField(max_length=255, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=PaymentStatus.choices,
                              default=PaymentStatus.PENDING)
    created_at = models.DateTimeField(_("created at the platform"), null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    step_claimed_by = models.CharField(max_length=32, blank=True, default="")
    step_claimed_until = models.DateTimeField(null=True, blank=True)
    #: Payouts: the signed transaction (base64 XDR), stored before it is submitted, and
    #: the end of its time bounds (after which it can never land).
    tx_envelope = models.TextField(blank=True)
    tx_valid_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("Pi payment")
        ordering = ["-recorded_at", "-pk"]
        indexes = [models.Index(fields=["status", "delivered_at"],
                                name="piauth_payment_unfinished")]

    def __str__(self) -> str:
        return f"{self.amount} Pi ({self.get_status_display()}) {self.identifier}"


class PayoutWallet(models.Model):
    """The app wallet's lease: one payout transaction in flight per wallet across
    processes (sequence numbers). ``lease_by`` / ``lease_until`` are a claim
    (:mod:`django_piauth.claims`), never a database lock held across a call."""

    address = models.CharField(max_length=56, unique=True)
    lease_by = models.CharField(max_length=32, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("Pi payout wallet")

    def __str__(self) -> str:
        return self.address
