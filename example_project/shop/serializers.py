from rest_framework import serializers

from .models import Purchase, SavedItem
from .payments import CATALOGUE


class SavedItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = SavedItem
        fields = ["id", "name", "created_at"]
        read_only_fields = ["id", "created_at"]


class PurchaseSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()
    amount = serializers.SerializerMethodField()

    class Meta:
        model = Purchase
        fields = ["id", "item", "name", "amount", "payment_identifier", "created_at"]
        read_only_fields = fields

    def get_name(self, purchase: Purchase) -> str:
        item = CATALOGUE.get(purchase.item)
        return item.name if item is not None else purchase.item

    def get_amount(self, purchase: Purchase) -> str:
        """The amount in Pi as text, without trailing zeros ("1", "0.5")."""
        return f"{purchase.amount.normalize():f}"
