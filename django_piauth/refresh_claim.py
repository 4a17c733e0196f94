"""The claim on a PeerID credential's refresh: one refresher at a time across threads and
processes, with no database lock held while PeerID answers (see :mod:`.claims`).

Its holder calls PeerID, then stores the new tokens only if the claim still holds,
releasing it in the same write.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .claims import CLAIM_MARGIN, RowClaims, new_holder
from .models import PeerIDCredential

__all__ = ["CLAIM_MARGIN", "RELEASED", "claim_lifetime", "held_by", "new_holder", "release",
           "try_claim"]

_claims = RowClaims(PeerIDCredential, "refresh_claimed")

#: The fields of a credential that nobody is refreshing.
RELEASED: dict[str, Any] = _claims.released


def claim_lifetime() -> float:
    """Seconds a claim holds: longer than any refresh can take."""
    return _claims.lifetime()


def try_claim(credential_pk: int, holder: str) -> bool:
    """Claim the refresh of a credential nobody is refreshing (or whose claim expired)."""
    return _claims.try_claim(credential_pk, holder)


def held_by(credential_pk: int, holder: str) -> QuerySet[PeerIDCredential]:
    return _claims.held_by(credential_pk, holder)


def release(credential_pk: int, holder: str) -> None:
    _claims.release(credential_pk, holder)
