"""Twenty payouts started at once from two server processes sharing PostgreSQL and Redis:
twenty transactions on the chain, no bad-sequence failure, nobody paid twice."""

from decimal import Decimal

import pytest
import requests
from django.contrib.auth import get_user_model
from stellar_sdk import Keypair

from django_piauth.models import Pioneer, PiPayment
from django_piauth.testing.horizon import FakeHorizon
from django_piauth.testing.server import LoopbackServer
from tests.helpers import all_at_once

pytestmark = [pytest.mark.services, pytest.mark.live, pytest.mark.django_db(transaction=True)]
SEED = Keypair.random().secret


@pytest.fixture
def horizon(live_fake_pi, monkeypatch):
    wallet = Keypair.from_secret(SEED)
    live_fake_pi.app_wallet = wallet.public_key
    fake = FakeHorizon(live_fake_pi.network, platform=live_fake_pi)
    fake.create_account(wallet.public_key, balance=10_000, sequence=100)
    with LoopbackServer(fake) as server:
        monkeypatch.setenv("PIAUTH_TEST_WALLET_SEED", SEED)
        monkeypatch.setenv("PIAUTH_TEST_HORIZON_URL", server.url)
        monkeypatch.setenv("PIAUTH_TEST_PI_NETWORK", live_fake_pi.network)
        yield fake


def test_twenty_concurrent_payouts_over_two_processes_each_pay_once(
        horizon, live_fake_pi, two_servers):
    horizon.delay(0.02)  # a little latency, so the payouts overlap
    uids = []
    for index in range(20):
        username = f"pioneer{index}"
        live_fake_pi.issue_token(username=username)
        uid = live_fake_pi.uid_for(username)
        horizon.create_account(live_fake_pi.wallet_of(uid), balance=0)
        user = get_user_model().objects.create(username=username)
        Pioneer.objects.create(user=user, provider="pi", uid=uid, username=username)
        uids.append(uid)

    def one_payout(index):
        response = requests.post(f"{two_servers[index % 2]}/api/test/pay/",
                                 json={"uid": uids[index], "amount": "1.5"}, timeout=120)
        return response.status_code, response.json().get("status")

    results = all_at_once(one_payout, range(20))

    assert results == [(200, "completed")] * 20
    assert horizon.refusals == []  # no bad sequence number: one transaction in flight
    assert len(horizon.transactions) == 20
    assert len({t.memo for t in horizon.transactions}) == 20
    for uid in uids:
        assert horizon.balance(live_fake_pi.wallet_of(uid)) == Decimal("1.5")
    assert horizon.sequence(Keypair.from_secret(SEED).public_key) == 120  # no gap, no waste
    assert PiPayment.objects.filter(status="completed", direction="app_to_user").count() == 20
