"""System checks of the Pi payment settings."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse

from .conf import DEFAULTS, piauth_settings


def _payment_urls_routed() -> bool:
    try:
        reverse("piauth:pi-payment-approve", args=["x"])
    except NoReverseMatch:
        return False
    return True


@checks.register(checks.Tags.urls)
def check_payment_handler(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """piauth.E050: ``PI_PAYMENT_HANDLER`` is not a ``PaymentHandler`` subclass;
    piauth.W051: the payment URLs are routed and a Server API Key is set (payments can
    run) with the default handler, which approves every payment and delivers nothing."""
    from .payment_records import payment_handler

    try:
        path = piauth_settings.PI_PAYMENT_HANDLER
    except ImproperlyConfigured:
        return []  # reported by piauth.E001
    try:
        payment_handler()
    except (ImportError, ImproperlyConfigured) as exc:
        return [checks.Error(
            f"PIAUTH['PI_PAYMENT_HANDLER'] ({path}) cannot be used: {exc}",
            hint="Name a subclass of django_piauth.payments.PaymentHandler.",
            id="piauth.E050")]
    if (path == DEFAULTS["PI_PAYMENT_HANDLER"] and piauth_settings.PI_SERVER_API_KEY
            and _payment_urls_routed()):
        return [checks.Warning(
            "The Pi payment URLs are routed, but PIAUTH['PI_PAYMENT_HANDLER'] is the "
            "default handler: every payment is approved and nothing is delivered.",
            hint="Subclass django_piauth.payments.PaymentHandler (check and deliver) and "
                 "name it in PIAUTH['PI_PAYMENT_HANDLER'].",
            id="piauth.W051")]
    return []


@checks.register(deploy=True)
def check_wallet_seed(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """piauth.E052 (deploy): ``PI_WALLET_SEED`` is set but is not a valid secret seed, or
    stellar-sdk is not installed to use it. The seed is never quoted."""
    from .stellar import seed_problem

    try:
        seed = piauth_settings.PI_WALLET_SEED
    except ImproperlyConfigured:
        return []  # reported by piauth.E001
    if seed is None:
        return []
    try:
        problem = seed_problem(seed)
    except ImproperlyConfigured as exc:  # stellar-sdk missing
        problem = str(exc)
    if problem is None:
        return []
    return [checks.Error(problem, hint="Set it from the environment to the app wallet's "
                                       "secret seed (S...), or leave it out (None).",
                         id="piauth.E052")]
