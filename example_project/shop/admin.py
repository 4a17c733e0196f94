from django.contrib import admin

from .models import Purchase, SavedItem


@admin.register(SavedItem)
class SavedItemAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "created_at")
    list_filter = ("created_at",)
    search_fields = ("name", "owner__username")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    """Purchases are made by the payment handler's ``deliver``: read-only here (the Pi
    payment behind each is under "Pi payments", searchable by its identifier)."""

    list_display = ("item", "amount", "user", "pioneer", "payment_identifier", "created_at")
    list_filter = ("item", "created_at")
    search_fields = ("payment_identifier", "user__username", "pioneer__uid",
                     "pioneer__username")
    list_select_related = ("user", "pioneer")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
