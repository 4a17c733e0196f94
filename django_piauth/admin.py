"""Pioneers in the admin: browse and search, never add or edit an identity by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from .exceptions import PiAuthError
from .models import PeerIDCredential, Pioneer, PiPayment, SafeGrant
from .payments import refresh
from .peerid import revoke

if TYPE_CHECKING:
    # django-stubs makes the admin classes generic over their models; Django's classes
    # are not subscriptable at run time, so only the type checker sees the parameters.
    _ReadOnlyInline = admin.TabularInline[Any, Any]  # each subclass names its own model
    _PiPaymentAdmin = admin.ModelAdmin[PiPayment]
    _PioneerAdmin = admin.ModelAdmin[Pioneer]
    _PeerIDCredentialAdmin = admin.ModelAdmin[PeerIDCredential]
    _SafeGrantAdmin = admin.ModelAdmin[SafeGrant]
else:
    _ReadOnlyInline = admin.TabularInline
    _PiPaymentAdmin = _PioneerAdmin = _PeerIDCredentialAdmin = _SafeGrantAdmin = admin.ModelAdmin

IDENTITY_FIELDS = ("user", "provider", "uid", "username", "scopes", "created_at",
                   "last_verified_at")


class ReadOnlyInline(_ReadOnlyInline):
    """Rows shown beside their parent, linked, never added or deleted there."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PiPaymentInline(ReadOnlyInline):
    """A Pioneer's payments on its admin page, read-only."""

    model = PiPayment
    fields = ("identifier", "amount", "status", "direction", "network", "created_at",
              "delivered_at")
    readonly_fields = fields


@admin.register(PiPayment)
class PiPaymentAdmin(_PiPaymentAdmin):
    """Pi payments, read-only: amounts, recipients and states come from the Pi Platform."""

    list_display = ("identifier", "pioneer", "amount", "status", "direction", "network",
                    "txid", "created_at", "delivered_at")
    list_filter = ("status", "direction", "network", ("delivered_at",
                                                      admin.EmptyFieldListFilter))
    search_fields = ("identifier", "txid", "pioneer__uid", "pioneer__username",
                     "pioneer__user__username")
    list_select_related = ("pioneer",)
    fields = ("identifier", "pioneer", "direction", "amount", "memo", "metadata", "network",
              "from_address", "to_address", "txid", "status", "tx_valid_until", "created_at",
              "approved_at", "completed_at", "cancelled_at", "delivered_at", "recorded_at",
              "updated_at")
    readonly_fields = fields
    ordering = ("-recorded_at",)
    actions = ["refresh_from_platform"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # It stores only what the platform says and writes nothing there: whoever may view
    # payments may refresh them. A completion it finds is delivered as the settle
    # command delivers (no request: the admin's is not the Pioneer's).
    @admin.action(description="Refresh from the Pi Platform", permissions=["view"])
    def refresh_from_platform(self, request: HttpRequest, queryset: Any) -> None:
        refreshed, failed = 0, []
        for identifier in queryset.values_list("identifier", flat=True):
            try:
                refresh(identifier)
            except (PiAuthError, ValueError) as exc:
                failed.append(f"{identifier} ({type(exc).__name__})")
            else:
                refreshed += 1
        if refreshed:
            self.message_user(request, f"Refreshed {refreshed} payment(s) from the Pi "
                                       "Platform.", messages.SUCCESS)
        if failed:
            self.message_user(request, "The Pi Platform could not say, try again: "
                                       + ", ".join(failed), messages.WARNING)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a record of money that moved


@admin.register(Pioneer)
class PioneerAdmin(_PioneerAdmin):
    list_display = ("uid", "username", "provider", "user", "created_at", "last_verified_at")
    list_filter = ("provider", "created_at", "last_verified_at")
    search_fields = ("uid", "username", "user__username", "user__email")
    readonly_fields = IDENTITY_FIELDS
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    inlines = [PiPaymentInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(PeerIDCredential)
class PeerIDCredentialAdmin(_PeerIDCredentialAdmin):
    """Expiry, scope and refresh history; the tokens are never shown, not even masked."""

    list_display = ("pioneer", "expires_at", "scope", "last_refreshed_at", "needs_refresh",
                    "revoked_at")
    list_filter = ("needs_refresh", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("pioneer__uid", "pioneer__username", "pioneer__user__username")
    list_select_related = ("pioneer",)
    fields = ("pioneer", "expires_at", "scope", "created_at", "last_refreshed_at",
              "needs_refresh", "revoked_at")
    readonly_fields = fields
    actions = ["revoke_credentials"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> Any:
        # Never load (decrypt) the tokens to draw a page that does not show them.
        return super().get_queryset(request).defer("access_token", "refresh_token")

    # Revoking changes the rows: staff who may only view credentials are not offered it,
    # and a forged POST of the action is refused (Django checks the permission).
    @admin.action(description="Revoke: forget the tokens and end their sessions",
                  permissions=["change"])
    def revoke_credentials(self, request: HttpRequest, queryset: Any) -> None:
        count = 0
        for credential in queryset:
            revoke(credential)
            count += 1
        self.message_user(request, f"Revoked {count} PeerID credential(s); their users "
                                   "must sign in again.", messages.SUCCESS)


class PioneerInline(ReadOnlyInline):
    """The user's linked Pioneers, shown on the user's admin page."""

    model = Pioneer
    fields = ("provider", "uid", "username", "created_at", "last_verified_at")
    readonly_fields = fields


def add_inline_to_user_admin(site: admin.AdminSite = admin.site) -> None:
    """Add :class:`PioneerInline` to whatever admin the user model has on ``site``.

    A project that registers its own user admin after this app can add the inline
    itself: ``inlines = [..., PioneerInline]``.
    """
    user_model = get_user_model()
    try:
        user_admin = site.get_model_admin(user_model)
    except NotRegistered:
        return
    admin_class = type(user_admin)
    if PioneerInline in admin_class.inlines:
        return
    site.unregister(user_model)
    site.register(
        user_model,
        type(admin_class.__name__, (admin_class,), {
            "inlines": [*admin_class.inlines, PioneerInline],
            "__module__": admin_class.__module__,
        }),
    )


add_inline_to_user_admin()


@admin.register(SafeGrant)
class SafeGrantAdmin(_SafeGrantAdmin):
    """SAFE Launcher grants, read-only; the token is never shown, not even masked.

    Grants are made and ended by ``manage.py piauth_safe_authorize`` / ``piauth_safe_revoke``.
    """

    list_display = ("app_name", "app_id", "app_vendor", "app_version", "launcher_url",
                    "permissions_granted", "authorized_at", "last_checked_at", "is_valid")
    list_filter = ("is_valid", "launcher_url")
    search_fields = ("app_name", "app_id", "app_vendor", "launcher_url")
    fields = ("launcher_url", "app_name", "app_id", "app_version", "app_vendor",
              "permissions_requested", "permissions_granted", "authorized_at",
              "last_checked_at", "is_valid", "invalidated_at")
    readonly_fields = fields
    ordering = ("-authorized_at",)

    def get_queryset(self, request: HttpRequest) -> Any:
        # Never load (decrypt) the token to draw a page that does not show it.
        return super().get_queryset(request).defer("token")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # piauth_safe_revoke revokes at the Launcher before forgetting
