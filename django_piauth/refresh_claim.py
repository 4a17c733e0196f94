"""The claim on a PeerID credential's refresh: one refresher at a time across threads and
processes, with no database lock held while PeerID answers.

A claim is a short committed write on the credential's row: ``refresh_claimed_by`` (a
random id of the refresher) and ``refresh_claimed_until``. Its holder calls PeerID, then
stores the new tokens only if the claim still holds, releasing it in the same write.
A claim lasts the whole-call deadline (``piauth_settings.deadline``) plus
:data:`CLAIM_MARGIN`, so one left by a crashed process is taken over once it has expired.
The clocks of the processes sharing the database must agree within the margin.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from .conf import piauth_settings
from .models import PeerIDCredential

#: Seconds a claim outlives the deadline of the call it covers (the writes around it).
CLAIM_MARGIN = 10.0

#: The fields of a credential that nobody is refreshing.
RELEASED: dict[str, Any] = {"refresh_claimed_by": "", "refresh_claimed_until": None}


def claim_lifetime() -> float:
    """Seconds a claim holds: longer than any refresh can take."""
    return piauth_settings.deadline + CLAIM_MARGIN


def new_holder() -> str:
    """A refresher's id, unique across processes."""
    return uuid.uuid4().hex


def try_claim(credential_pk: int, holder: str) -> bool:
    """Claim the refresh of a credential nobody is refreshing (or whose claim expired)."""
    now = timezone.now()
    free = Q(refresh_claimed_until__isnull=True) | Q(refresh_claimed_until__lte=now)
    claimed = PeerIDCredential.objects.filter(free, pk=credential_pk).update(
        refresh_claimed_by=holder,
        refresh_claimed_until=now + timedelta(seconds=claim_lifetime()))
    return claimed == 1


def held_by(credential_pk: int, holder: str) -> QuerySet[PeerIDCredential]:
    """The credential's row while ``holder``'s claim holds (nobody took it over): the
    rows to update with what the claim covers; empty once the claim is lost."""
    return PeerIDCredential.objects.filter(pk=credential_pk, refresh_claimed_by=holder)


def release(credential_pk: int, holder: str) -> None:
    held_by(credential_pk, holder).update(**RELEASED)
