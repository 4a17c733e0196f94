"""Claims on a row: one holder at a time across threads and processes for a step that
calls upstream, with no database lock held while upstream answers.

A claim is a short committed write on the row: ``<prefix>_by`` (a random id of the
holder) and ``<prefix>_until``. Its holder calls upstream, then records the outcome
only if the claim still holds, releasing it in the same write. A claim lasts as many
whole-call deadlines (``piauth_settings.deadline``) as the upstream calls it covers, plus
:data:`CLAIM_MARGIN`, so one left by a crashed process is taken over once it has expired
and a live holder never loses it midway.
The clocks of the processes sharing the database must agree within the margin.

Used for the PeerID refresh (:mod:`.refresh_claim`); the steps of a Pi payment
(``PiPayment.step_claimed_by`` / ``_until``) are claimed the same way.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from .conf import piauth_settings

#: Seconds a claim outlives the deadline of the call it covers (the writes around it).
CLAIM_MARGIN = 10.0


def new_holder() -> str:
    """A claimant's id, unique across processes."""
    return uuid.uuid4().hex


class RowClaims:
    """The claims kept in ``model``'s ``<prefix>_by`` and ``<prefix>_until`` fields."""

    def __init__(self, model: type[Model], prefix: str, *, calls: int = 1) -> None:
        """``calls``: how many upstream calls one claim covers (each may take the whole
        deadline), so a claim never expires while its holder is still within them."""
        self.model = model
        self.calls = calls
        self.by_field = f"{prefix}_by"
        self.until_field = f"{prefix}_until"

    def lifetime(self) -> float:
        """Seconds a claim holds: ``calls`` whole-call deadlines plus the margin."""
        return self.calls * piauth_settings.deadline + CLAIM_MARGIN

    @property
    def released(self) -> dict[str, Any]:
        """The field values of a row nobody holds."""
        return {self.by_field: "", self.until_field: None}

    def free(self) -> Q:
        """Rows nobody holds, or whose claim expired."""
        return (Q(**{f"{self.until_field}__isnull": True})
                | Q(**{f"{self.until_field}__lte": timezone.now()}))

    def try_claim(self, pk: Any, holder: str, **conditions: Any) -> bool:
        """Claim the row if nobody holds it (or its claim expired) and it matches the
        lookups in ``conditions`` (e.g. ``status="approved"``)."""
        until = timezone.now() + timedelta(seconds=self.lifetime())
        claimed = self.model._default_manager.filter(self.free(), pk=pk, **conditions).update(
            **{self.by_field: holder, self.until_field: until})
        return claimed == 1

    def renew(self, pk: Any, holder: str) -> bool:
        """Extend ``holder``'s claim by a lifetime from now; False if it was lost."""
        until = timezone.now() + timedelta(seconds=self.lifetime())
        return self.held_by(pk, holder).update(**{self.until_field: until}) == 1

    def held_by(self, pk: Any, holder: str) -> QuerySet[Any]:
        """The row while ``holder``'s claim holds (nobody took it over): the rows to
        update with what the claim covers; empty once the claim is lost."""
        return self.model._default_manager.filter(pk=pk, **{self.by_field: holder})

    def release(self, pk: Any, holder: str) -> None:
        self.held_by(pk, holder).update(**self.released)
