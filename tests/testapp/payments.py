"""The test suite's PaymentHandler: refuses and fails on request, records deliveries."""

from django_piauth.payments import PaymentHandler, PaymentRefused

from .models import Delivery

#: The payments ``check`` was asked about, in order (this process only).
checked_ids: list[str] = []


class ShopHandler(PaymentHandler):
    """``metadata.refuse``: refused. ``metadata.fail_online``: delivery raises when a
    request is given (a live request), succeeds from the settle command."""

    def check(self, payment, request):
        checked_ids.append(payment.identifier)
        if isinstance(payment.metadata, dict) and payment.metadata.get("refuse"):
            raise PaymentRefused("This item is sold out.")

    def deliver(self, payment, request):
        Delivery.objects.create(identifier=payment.identifier, amount=payment.amount,
                                from_request=request is not None)
        if (isinstance(payment.metadata, dict) and payment.metadata.get("fail_online")
                and request is not None):
            raise RuntimeError("the warehouse is down")
