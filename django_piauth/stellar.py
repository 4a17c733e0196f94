"""The app wallet, through ``stellar-sdk`` (the optional ``payouts`` extra).

The wallet's secret seed (``PIAUTH["PI_WALLET_SEED"]``) is read here and nowhere else. It
never reaches a log, an exception, a ``repr`` or a page: stellar-sdk's own error for a bad
seed quotes the seed, so it is never chained or re-raised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from .conf import built_from_settings, piauth_settings

if TYPE_CHECKING:
    from stellar_sdk import Keypair

MISSING_SDK = ("Pi payouts need stellar-sdk: pip install 'django-piauth[payouts]'.")


def stellar_sdk() -> Any:
    """The ``stellar_sdk`` module, or ``ImproperlyConfigured`` saying how to install it."""
    try:
        import stellar_sdk as sdk
    except ImportError:
        raise ImproperlyConfigured(MISSING_SDK) from None
    return sdk


def seed_problem(seed: Any) -> str | None:
    """Why ``seed`` is not a usable secret key (never quoting it), or None."""
    if not isinstance(seed, str) or not seed:
        return "PIAUTH['PI_WALLET_SEED'] is not set."
    sdk = stellar_sdk()
    try:
        sdk.Keypair.from_secret(seed)
    except Exception:  # the SDK's message quotes the seed: not kept
        return ("PIAUTH['PI_WALLET_SEED'] is not a valid secret seed (an S... key of 56 "
                "characters).")
    return None


def _build_wallet() -> Keypair:
    seed = piauth_settings.PI_WALLET_SEED
    problem = seed_problem(seed)
    if problem is not None:
        raise ImproperlyConfigured(problem)
    keypair: Keypair = stellar_sdk().Keypair.from_secret(seed)
    return keypair


#: The app wallet's keypair (its ``repr`` shows the public key only).
app_wallet = built_from_settings(_build_wallet)
