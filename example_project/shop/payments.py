"""The shop's say in its Pi payments (``PIAUTH["PI_PAYMENT_HANDLER"]``).

The page asks ``Pi.createPayment`` for ``{"amount": <price>, "metadata": {"item": <key>}}``;
the server trusts none of it: ``check`` reads the item and the amount of the payment as
the Pi Platform describes it, before approval, and ``deliver`` records the purchase once
the platform confirmed the completion.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpRequest

from django_piauth.models import PiPayment
from django_piauth.payments import PaymentHandler, PaymentRefused

from .models import Purchase


@dataclass(frozen=True)
class Item:
    name: str
    price: Decimal  # in Pi


#: What the demo shop sells, by the key the page sends in the payment's metadata.
CATALOGUE = {
    "sticker": Item("Sticker", Decimal("1")),
}


def item_of(payment: PiPayment) -> str | None:
    """The catalogue key in the payment's metadata, if it names one."""
    metadata = payment.metadata
    item = metadata.get("item") if isinstance(metadata, dict) else None
    return item if isinstance(item, str) and item in CATALOGUE else None


class ShopPayments(PaymentHandler):
    def check(self, payment: PiPayment, request: HttpRequest | None) -> None:
        """Refuse an unknown item, or a payment whose amount is not the item's price
        (a refused payment is cancelled at the platform: no Pi moves)."""
        key = item_of(payment)
        if key is None:
            raise PaymentRefused("The shop does not sell this item.")
        if payment.amount != CATALOGUE[key].price:
            raise PaymentRefused(
                f"A {CATALOGUE[key].name.lower()} costs {CATALOGUE[key].price} Pi, "
                f"not {payment.amount.normalize():f} Pi."
            )

    def deliver(self, payment: PiPayment, request: HttpRequest | None) -> None:
        """Record the purchase; once per payment, whoever delivers it (a live request or
        the settle command), and a second call changes nothing."""
        Purchase.objects.get_or_create(
            payment_identifier=payment.identifier,
            defaults={
                "user": payment.pioneer.user,
                "pioneer": payment.pioneer,
                # check() approved it, so the item is known (the platform's metadata).
                "item": item_of(payment) or "",
                "amount": payment.amount,
            },
        )
