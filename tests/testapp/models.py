from django.db import models


class Delivery(models.Model):
    """One row per ``deliver`` that ran to its end: two rows for a payment would be a
    second delivery (no unique constraint, on purpose)."""

    identifier = models.CharField(max_length=128)
    amount = models.DecimalField(max_digits=30, decimal_places=7)
    from_request = models.BooleanField()

    def __str__(self) -> str:
        return f"delivery of {self.identifier}"
