"""``manage.py piauth_pi_payments_settle``: bring every unfinished Pi payment to an end.

Safe to run from cron beside live traffic: each payment's step is claimed as the views
claim it, so the command and a live request never both write at the platform or both
deliver.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...conf import piauth_settings
from ...payments import settle
from ...payouts import settle_payouts


class Command(BaseCommand):
    help = ("Fetch every stored Pi payment that is not finished and bring it to an end "
            "(complete a verified transaction, cancel one without a transaction once it "
            "is older than --age), retry failed deliveries, and resume every unfinished "
            "payout (stored, or listed by the platform as incomplete).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--age", type=float, default=None,
            help="Seconds after which a payment without a transaction is cancelled "
                 "(default: PIAUTH['PI_PAYMENT_SETTLE_AGE'], one hour unless set).")

    def handle(self, *args: Any, **options: Any) -> None:
        actions = settle(age=options["age"])
        if piauth_settings.PI_WALLET_SEED:  # payouts are in use
            try:
                actions += settle_payouts()
            except ImproperlyConfigured as exc:  # no stellar-sdk, or a bad seed (unquoted)
                raise CommandError(str(exc)) from None
        for line in actions:
            self.stdout.write(line)
        self.stdout.write(f"{len(actions)} payment(s) looked at." if actions
                          else "Nothing to settle.")
