"""The Horizon client against the fake Horizon (through ``responses``): accounts, the fee,
submissions as Horizon checks them, lookups, and the three outcomes."""

from __future__ import annotations

from decimal import Decimal

import pytest
import responses
from stellar_sdk import Account, Asset, Keypair, TransactionBuilder

from django_piauth.exceptions import PaymentError, UpstreamUnavailable
from django_piauth.providers.horizon import HorizonClient, HorizonRejected
from django_piauth.providers.pi import PiPlatformClient
from django_piauth.testing import FakePiPlatform
from django_piauth.testing.horizon import BASE_FEE, FakeHorizon
from django_piauth.testing.responses_adapter import serve_with_responses

URL = "https://horizon.example"
NETWORK = "Pi Testnet"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def chain():
    clock = Clock()
    platform = FakePiPlatform(network=NETWORK)
    wallet = Keypair.random()
    platform.app_wallet = wallet.public_key
    horizon = FakeHorizon(NETWORK, platform=platform, clock=clock)
    horizon.create_account(wallet.public_key, balance=100, sequence=41)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        serve_with_responses(horizon, mocked, URL)
        yield horizon, platform, wallet, HorizonClient(URL, timeout=(1, 1)), clock


def signed(wallet, sequence, destination, amount="1.5", memo="pay-1", *,
           network=NETWORK, signer=None, timeout=180, clock=None):
    tx = (TransactionBuilder(Account(wallet.public_key, sequence), network_passphrase=network,
                             base_fee=BASE_FEE)
          .append_payment_op(destination, Asset.native(), amount)
          .add_text_memo(memo))
    if clock is None:
        tx = tx.set_timeout(timeout)
    else:
        tx = tx.add_time_bounds(0, int(clock.now) + timeout)
    envelope = tx.build()
    envelope.sign(signer or wallet)
    return envelope.to_xdr(), envelope.hash_hex()


def payout_to_alice(horizon, platform):
    """A payout of 1.5 Pi created at the platform, its recipient's account on the chain:
    (its id, the recipient's address)."""
    platform.issue_token(username="alice")
    pid = platform.create_app_payment(platform.uid_for("alice"), "1.5", "A reward")
    destination = platform.payment(pid)["to_address"]
    horizon.create_account(destination, balance=0)
    return pid, destination


def test_account_and_fee(chain):
    _horizon, _platform, wallet, client, _clock = chain
    account = client.account(wallet.public_key)
    assert (account.sequence, account.balance) == (41, Decimal("100"))
    assert client.account(Keypair.random().public_key) is None
    assert client.base_fee() == BASE_FEE
    with pytest.raises(ValueError):
        client.account("../fee_stats")


def test_a_payout_lands_once_and_the_platform_sees_it(chain):
    horizon, platform, wallet, client, clock = chain
    pid, destination = payout_to_alice(horizon, platform)
    xdr, tx_hash = signed(wallet, 41, destination, memo=pid, clock=clock)

    landed = client.submit(xdr, tx_hash)

    assert (landed.hash, landed.successful, landed.memo) == (tx_hash, True, pid)
    assert horizon.balance(destination) == Decimal("1.5")
    assert horizon.balance(wallet.public_key) == Decimal("100") - Decimal("1.5") - Decimal(
        "0.01")
    assert horizon.sequence(wallet.public_key) == 42
    assert platform.payment(pid)["transaction"] == {
        "txid": tx_hash, "verified": True, "_link": platform.payment(pid)["transaction"]["_link"]}
    assert client.transaction(tx_hash).ledger == 1
    assert client.transaction("0" * 64) is None

    with pytest.raises(HorizonRejected) as replay:
        client.submit(xdr, tx_hash)
    assert replay.value.transaction_code == "tx_bad_seq"
    assert len(horizon.transactions) == 1


@pytest.mark.parametrize("case, code", [
    ("bad_seq", ("tx_bad_seq", ())),
    ("other_network", ("tx_bad_auth", ())),
    ("other_signer", ("tx_bad_auth", ())),
    ("too_late", ("tx_too_late", ())),
    ("no_destination", ("tx_failed", ("op_no_destination",))),
    ("underfunded", ("tx_failed", ("op_underfunded",))),
])
def test_submissions_horizon_refuses(chain, case, code):
    horizon, _platform, wallet, client, clock = chain
    destination = Keypair.random().public_key
    if case != "no_destination":
        horizon.create_account(destination, balance=0)
    options = {"clock": clock}
    sequence, amount = 41, "1.5"
    if case == "bad_seq":
        sequence = 44
    elif case == "other_network":
        options["network"] = "Pi Network"
    elif case == "other_signer":
        options["signer"] = Keypair.random()
    elif case == "underfunded":
        amount = "5000"
    xdr, tx_hash = signed(wallet, sequence, destination, amount, **options)
    if case == "too_late":
        clock.now += 181

    with pytest.raises(HorizonRejected) as refused:
        client.submit(xdr, tx_hash)

    assert (refused.value.transaction_code, refused.value.operation_codes) == code
    assert horizon.transactions == [] and client.transaction(tx_hash) is None


def test_garbage_is_malformed(chain):
    _horizon, _platform, _wallet, client, _clock = chain
    with pytest.raises(HorizonRejected) as refused:
        client.submit("bm90IGFuIGVudmVsb3Bl", "0" * 64)
    assert refused.value.transaction_code == "tx_malformed"


@pytest.mark.parametrize("fault", ["500", "html", "wrong_shape"])
def test_when_horizon_cannot_say(chain, fault):
    horizon, _platform, wallet, client, _clock = chain
    if fault == "500":
        horizon.fail_with(500, count=None)
    elif fault == "html":
        horizon.garbage(count=None)
    else:
        horizon.fail_with(200, {"unexpected": True}, count=None)
    for call in (lambda: client.account(wallet.public_key), client.base_fee,
                 lambda: client.submit("AAAA", "0" * 64),
                 lambda: client.transaction("0" * 64)):
        with pytest.raises(UpstreamUnavailable):
            call()


@pytest.mark.parametrize("wrong", ["amount", "memo", "destination"])
def test_a_transaction_that_does_not_pay_the_payment_is_not_verified(chain, wrong):
    horizon, platform, wallet, client, clock = chain
    pid, destination = payout_to_alice(horizon, platform)
    other = Keypair.random().public_key
    horizon.create_account(other, balance=0)
    xdr, tx_hash = signed(wallet, 41, other if wrong == "destination" else destination,
                          amount="2" if wrong == "amount" else "1.5",
                          memo="another-payment" if wrong == "memo" else pid, clock=clock)

    client.submit(xdr, tx_hash)  # it lands: Horizon knows nothing of payments

    assert platform.payment(pid)["transaction"] is None

    pi = PiPlatformClient("https://pi.example", server_api_key=platform.server_api_key)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        serve_with_responses(platform, mocked, "https://pi.example")
        with pytest.raises(PaymentError) as refused:
            pi.complete_payment(pid, tx_hash)
    assert refused.value.code == "not_verified"
