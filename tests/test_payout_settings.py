"""Payout settings: the network and its Horizon, the wallet seed checked without ever
being shown, and a clear error without stellar-sdk."""

import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from stellar_sdk import Keypair

from django_piauth.checks_payments import check_wallet_seed
from django_piauth.conf import piauth_settings
from django_piauth.stellar import MISSING_SDK, app_wallet

SEED = Keypair.random().secret


def _set(settings, **keys):
    settings.PIAUTH = {**settings.PIAUTH, **keys}


@pytest.mark.parametrize("network, horizon", [
    ("Pi Network", "https://api.mainnet.minepi.com"),
    ("Pi Testnet", "https://api.testnet.minepi.com")])
def test_the_horizon_follows_the_network(settings, network, horizon):
    _set(settings, PI_NETWORK=network)
    assert piauth_settings.horizon_url == horizon
    _set(settings, PI_HORIZON_URL="http://127.0.0.1:9000")
    assert piauth_settings.horizon_url == "http://127.0.0.1:9000"


def test_an_unknown_network_is_refused(settings):
    _set(settings, PI_NETWORK="Stellar")
    with pytest.raises(ImproperlyConfigured, match="PI_NETWORK"):
        piauth_settings.horizon_url  # noqa: B018


@pytest.mark.parametrize("seed", ["SBAD", SEED[:-1] + ("A" if SEED[-1] != "A" else "B"),
                                  Keypair.random().public_key, " " + SEED])
def test_a_seed_that_is_not_a_secret_key_fails_the_deploy_check_unquoted(settings, seed):
    _set(settings, PI_WALLET_SEED=seed)
    messages = check_wallet_seed()
    assert [m.id for m in messages] == ["piauth.E052"]
    shown = messages[0].msg + (messages[0].hint or "")
    assert seed.strip() not in shown and "PI_WALLET_SEED" in shown
    with pytest.raises(ImproperlyConfigured) as raised:
        app_wallet()
    assert seed.strip() not in str(raised.value) and raised.value.__cause__ is None
    assert raised.value.__context__ is None or seed.strip() not in str(raised.value.__context__)


def test_a_valid_seed_passes_and_its_keypair_never_shows_it(settings):
    _set(settings, PI_WALLET_SEED=SEED)
    assert check_wallet_seed() == []
    wallet = app_wallet()
    assert wallet.public_key == Keypair.from_secret(SEED).public_key
    assert SEED not in repr(wallet) and SEED not in str(wallet)


def test_no_seed_no_check(settings):
    assert check_wallet_seed() == []


def test_without_stellar_sdk_the_error_says_how_to_install_it(settings, monkeypatch):
    _set(settings, PI_WALLET_SEED=SEED)
    monkeypatch.setitem(sys.modules, "stellar_sdk", None)  # import fails
    with pytest.raises(ImproperlyConfigured, match=r"django-piauth\[payouts\]"):
        app_wallet()
    assert [m.msg for m in check_wallet_seed()] == [MISSING_SDK]
