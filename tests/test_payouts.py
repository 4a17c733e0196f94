"""Payouts (app to user) against the fake Pi Platform and the fake Horizon: the happy
path, a crash after each step then the settle command, an expired transaction, a missing
recipient. Counted in chain transactions, platform calls and rows."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from stellar_sdk import Keypair

from django_piauth import payouts
from django_piauth.exceptions import UpstreamUnavailable
from django_piauth.models import Pioneer, PiPayment
from django_piauth.payments import pay
from django_piauth.testing.horizon import FakeHorizon
from django_piauth.testing.responses_adapter import serve_with_responses

pytestmark = pytest.mark.django_db(transaction=True)
HORIZON = "https://horizon.example"
SEED = Keypair.random().secret


class Crash(BaseException):
    """A process dying mid-payout (not an Exception: nothing may catch it)."""


@pytest.fixture
def chain(fake_pi, piauth_responses, settings):
    wallet = Keypair.from_secret(SEED)
    settings.PIAUTH = {**settings.PIAUTH, "PI_WALLET_SEED": SEED,
                       "PI_NETWORK": fake_pi.network, "PI_HORIZON_URL": HORIZON}
    fake_pi.app_wallet = wallet.public_key
    horizon = FakeHorizon(fake_pi.network, platform=fake_pi)
    horizon.create_account(wallet.public_key, balance=1000, sequence=7)
    serve_with_responses(horizon, piauth_responses, HORIZON)
    return horizon


def pioneer(fake_pi, horizon, username="alice", *, with_account=True):
    fake_pi.issue_token(username=username)
    uid = fake_pi.uid_for(username)
    if with_account:
        horizon.create_account(fake_pi.wallet_of(uid), balance=0)
    user = get_user_model().objects.create(username=username)
    return Pioneer.objects.create(user=user, provider="pi", uid=uid, username=username)


def settle():
    out = io.StringIO()
    call_command("piauth_pi_payments_settle", stdout=out)
    return out.getvalue()


def test_a_payout_is_created_signed_submitted_and_completed(fake_pi, chain):
    alice = pioneer(fake_pi, chain)

    payment = pay(alice, Decimal("2.5"), "A reward", {"level": 3})

    assert payment.status == "completed" and payment.direction == "app_to_user"
    [landed] = chain.transactions
    assert (landed.memo, landed.amount, landed.hash) == (payment.identifier, Decimal("2.5"),
                                                         payment.txid)
    assert chain.balance(fake_pi.wallet_of(alice.uid)) == Decimal("2.5")
    dto = fake_pi.payment(payment.identifier)
    assert dto["status"]["developer_completed"] is True
    assert dto["transaction"]["txid"] == payment.txid
    assert fake_pi.call_count("/v2/payments", "POST") == 1
    assert fake_pi.call_count(f"/v2/payments/{payment.identifier}/complete", "POST") == 1
    assert payment.metadata == {"level": 3} and payment.completed_at is not None


@pytest.mark.parametrize("crash_after", ["platform_create", "create", "sign", "submit",
                                         "horizon_accepted", "before_complete"])
def test_a_crash_after_any_step_is_resumed_by_settle_and_pays_once(
        fake_pi, chain, monkeypatch, crash_after):
    alice = pioneer(fake_pi, chain)
    targets = {"platform_create": (payouts, "_insert"), "create": (payouts, "_insert"),
               "sign": (payouts, "_sign"),
               "submit": (payouts, "_submit"), "before_complete": (payouts, "_complete")}
    if crash_after == "horizon_accepted":
        from django_piauth.providers.horizon import HorizonClient
        module, name = HorizonClient, "submit"
    else:
        module, name = targets[crash_after]
    original = getattr(module, name)

    def crashing(*args, **kwargs):
        if crash_after in ("before_complete", "platform_create"):  # before it is stored
            raise Crash
        original(*args, **kwargs)
        raise Crash

    monkeypatch.setattr(module, name, crashing)
    with pytest.raises(Crash):
        pay(alice, Decimal("1.25"), "A reward")
    monkeypatch.setattr(module, name, original)

    out = settle()

    [payment] = PiPayment.objects.all()
    assert payment.status == "completed", out
    assert len(chain.transactions) == 1
    assert chain.transactions[0].memo == payment.identifier
    assert chain.balance(fake_pi.wallet_of(alice.uid)) == Decimal("1.25")
    assert fake_pi.payment(payment.identifier)["status"]["developer_completed"] is True
    settle()
    assert len(chain.transactions) == 1  # a second settle pays nothing more


def test_an_expired_transaction_that_never_landed_is_signed_anew_once(
        fake_pi, chain, monkeypatch):
    """Signed ten minutes ago, then the process died before submitting it: its time
    bounds passed, it can never land, so it is signed anew (once) and that one lands."""
    alice = pioneer(fake_pi, chain)
    original_submit, real_now = payouts._submit, timezone.now

    def crash(payment):
        raise Crash

    monkeypatch.setattr(payouts, "_submit", crash)
    monkeypatch.setattr(payouts.timezone, "now", lambda: real_now() - timedelta(minutes=10))
    with pytest.raises(Crash):
        pay(alice, Decimal(1), "A reward")
    monkeypatch.setattr(payouts, "_submit", original_submit)
    monkeypatch.setattr(payouts.timezone, "now", real_now)
    first = PiPayment.objects.get()
    assert first.status == "signed" and chain.transactions == []

    settle()

    payment = PiPayment.objects.get()
    assert payment.status == "completed" and payment.txid != first.txid
    assert [t.hash for t in chain.transactions] == [payment.txid]
    assert chain.sequence(Keypair.from_secret(SEED).public_key) == 8  # one landed


def test_a_missing_recipient_account_is_a_clear_error_and_no_fee(fake_pi, chain):
    alice = pioneer(fake_pi, chain, with_account=False)
    balance = chain.balance(Keypair.from_secret(SEED).public_key)

    with pytest.raises(payouts.PayoutRecipientMissing, match="does not exist"):
        pay(alice, Decimal(1), "A reward")

    assert chain.transactions == []
    assert chain.balance(Keypair.from_secret(SEED).public_key) == balance
    payment = PiPayment.objects.get()
    assert payment.status == "cancelled"
    assert fake_pi.payment(payment.identifier)["status"]["cancelled"] is True


def test_amounts_are_decimals_of_seven_places(fake_pi, chain):
    alice = pioneer(fake_pi, chain)
    for bad in (1.5, "1.5", Decimal("0.00000001"), Decimal(0), Decimal(-1)):
        with pytest.raises((TypeError, ValueError)):
            pay(alice, bad, "A reward")
    assert fake_pi.call_count("/v2/payments", "POST") == 0


def test_the_seed_is_nowhere(fake_pi, chain, caplog, monkeypatch):
    alice = pioneer(fake_pi, chain)
    original = payouts._submit
    calls = []

    def expire_once(payment):  # an expired signature too: every log line of a payout
        if not calls:
            calls.append(payment.txid)
            PiPayment.objects.filter(pk=payment.pk).update(
                tx_valid_until=timezone.now() - timedelta(minutes=10))
            payment.refresh_from_db()
        return original(payment)

    monkeypatch.setattr(payouts, "_submit", expire_once)
    with caplog.at_level(logging.DEBUG):
        payment = pay(alice, Decimal(1), "A reward")
        out = settle()
    assert "signing it anew" in caplog.text  # the logs were captured
    dumped = io.StringIO()
    call_command("dumpdata", "django_piauth", stdout=dumped)
    for text in (caplog.text, out, dumped.getvalue(), repr(payment), str(payment)):
        assert SEED not in text


FAULTS = {
    "500": lambda fake, path: fake.fail_with(500, path=path),
    "html": lambda fake, path: fake.fail_with(200, b"<html>maintenance</html>", path=path,
                                              content_type="text/html"),
    "wrong_shape": lambda fake, path: fake.fail_with(200, {"unexpected": [1]}, path=path),
    "timeout": lambda fake, path: fake.delay(30, count=1, path=path),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("step", ["platform create", "recipient account", "wallet account",
                                  "fee", "transaction lookup", "platform complete"])
def test_a_fault_on_any_call_is_a_clear_error_and_settle_pays_once(
        fake_pi, chain, settings, step, fault):
    settings.PIAUTH = {**settings.PIAUTH, "READ_TIMEOUT": 0.5, "CALL_DEADLINE": 1}
    alice = pioneer(fake_pi, chain)
    recipient = fake_pi.wallet_of(alice.uid)
    upstream, path = {
        "platform create": (fake_pi, "/v2/payments"),
        "recipient account": (chain, f"/accounts/{recipient}"),
        "wallet account": (chain, f"/accounts/{Keypair.from_secret(SEED).public_key}"),
        "fee": (chain, "/fee_stats"),
        "transaction lookup": (chain, "/transactions"),
        "platform complete": (fake_pi, None),
    }[step]
    if step == "platform complete":
        original = payouts._complete

        def fail_then_complete(payment):
            FAULTS[fault](fake_pi, f"/v2/payments/{payment.identifier}/complete")
            return original(payment)

        payouts_complete = fail_then_complete
    else:
        FAULTS[fault](upstream, path)
        payouts_complete = None

    with pytest.MonkeyPatch.context() as patch:
        if payouts_complete is not None:
            patch.setattr(payouts, "_complete", payouts_complete)
        with pytest.raises(UpstreamUnavailable) as raised:
            pay(alice, Decimal("3"), "A reward")
    assert SEED not in str(raised.value)
    upstream.clear_failures()

    settle()

    paid = [t for t in chain.transactions if t.destination == recipient]
    assert len(paid) == (0 if step == "platform create" else 1)
    if step != "platform create":
        assert PiPayment.objects.get().status == "completed"
        assert chain.balance(recipient) == Decimal(3)
    else:  # nothing was created at the platform: nothing to pay, nothing stored
        assert not PiPayment.objects.exists()


def test_a_refused_sequence_before_expiry_is_not_signed_anew(fake_pi, chain, monkeypatch):
    """tx_bad_seq while the transaction could still have landed unseen: nothing signed
    again; the payout stays signed with its transaction until that has expired."""
    from django_piauth.providers.horizon import HorizonClient

    alice = pioneer(fake_pi, chain)
    signed = []

    def always_bad_seq(self, envelope_xdr, tx_hash):
        signed.append(tx_hash)
        raise payouts.HorizonRejected("tx_bad_seq")

    monkeypatch.setattr(HorizonClient, "submit", always_bad_seq)
    with pytest.raises(UpstreamUnavailable, match="waits for it to expire"):
        pay(alice, Decimal(1), "A reward")
    stored = PiPayment.objects.get()
    assert (stored.status, stored.txid) == ("signed", signed[0])
    assert "payout left signed" in settle()
    assert len(signed) == 2 and set(signed) == {stored.txid}  # the same transaction
    assert chain.transactions == []


def test_a_horizon_that_refuses_everything_stops_after_three_signings(fake_pi, chain,
                                                                      monkeypatch):
    """Expired, refused, signed anew: a Horizon that refuses whatever we sign stops the
    attempt after three signings (the clock past each one's end)."""
    from django_piauth.providers.horizon import HorizonClient

    alice = pioneer(fake_pi, chain)
    signed = []

    submitted = {"since the last signing": False}
    real_sign = payouts._sign

    def sign(payment):
        submitted["since the last signing"] = False
        return real_sign(payment)

    def too_late(self, envelope_xdr, tx_hash):
        signed.append(tx_hash)
        submitted["since the last signing"] = True
        raise payouts.HorizonRejected("tx_too_late")

    monkeypatch.setattr(payouts, "_sign", sign)
    monkeypatch.setattr(HorizonClient, "submit", too_late)
    # Each transaction's time is up as soon as it was submitted once.
    monkeypatch.setattr(payouts, "_expired",
                        lambda payment: submitted["since the last signing"])
    with pytest.raises(payouts.PayoutError, match="refused 3 transactions"):
        pay(alice, Decimal(1), "A reward")
    assert len(signed) == 3 and chain.transactions == []
    assert PiPayment.objects.get().status == "created"  # for the settle command


def test_a_submission_that_landed_unseen_is_never_paid_twice(fake_pi, chain, monkeypatch):
    """The submission's answer is lost but the transaction landed; Horizon does not show
    it yet (a lagging node), and the retry is refused tx_bad_seq (its sequence is used).
    Signing anew then would pay twice: the payout waits, and once Horizon shows the
    transaction, settle completes it with one transaction on the chain."""
    from django_piauth.providers.horizon import HorizonClient

    alice = pioneer(fake_pi, chain)
    real_submit, real_lookup = HorizonClient.submit, HorizonClient.transaction

    def landed_but_lost(self, envelope_xdr, tx_hash):
        real_submit(self, envelope_xdr, tx_hash)
        raise UpstreamUnavailable("Horizon did not answer in time", service="Pi Horizon")

    monkeypatch.setattr(HorizonClient, "submit", landed_but_lost)
    monkeypatch.setattr(HorizonClient, "transaction", lambda self, tx_hash: None)
    with pytest.raises(UpstreamUnavailable):
        pay(alice, Decimal(1), "A reward")
    monkeypatch.setattr(HorizonClient, "submit", real_submit)
    assert "payout left signed" in settle()  # refused tx_bad_seq, still not shown
    assert "tx_bad_seq" in chain.refusals
    monkeypatch.setattr(HorizonClient, "transaction", real_lookup)  # the node caught up
    settle()
    payment = PiPayment.objects.get()
    assert payment.status == "completed"
    assert [t.hash for t in chain.transactions] == [payment.txid]
    assert chain.balance(fake_pi.wallet_of(alice.uid)) == Decimal(1)


def test_a_stale_view_of_a_payout_does_not_undo_a_newer_signing(fake_pi, chain):
    """A holder that read the payout signed as tx1 while another signed it anew as tx2:
    its 'sign anew' (from tx1) changes nothing."""
    alice = pioneer(fake_pi, chain)
    payment = pay(alice, Decimal(1), "A reward")
    PiPayment.objects.filter(pk=payment.pk).update(status="signed", txid="tx2",
                                                   tx_envelope="AAAA")
    stale = PiPayment.objects.get(pk=payment.pk)
    stale.txid = "tx1"
    payouts._sign_anew(stale, "expired (as this holder saw it)")
    assert PiPayment.objects.filter(pk=payment.pk, status="signed", txid="tx2").exists()


def test_the_admin_refresh_leaves_payouts_alone(fake_pi, chain):
    from django_piauth.exceptions import PaymentForbidden
    from django_piauth.payments import refresh

    alice = pioneer(fake_pi, chain)
    payment = pay(alice, Decimal(1), "A reward")
    with pytest.raises(PaymentForbidden):
        refresh(payment.identifier)
    assert PiPayment.objects.get().txid == payment.txid


def test_settle_without_stellar_sdk_is_a_command_error(fake_pi, chain, monkeypatch):
    import sys

    from django.core.management.base import CommandError

    from django_piauth.conf import piauth_settings

    monkeypatch.setitem(sys.modules, "stellar_sdk", None)
    piauth_settings.reload()  # the wallet is built again, without the SDK
    with pytest.raises(CommandError, match=r"django-piauth\[payouts\]"):
        call_command("piauth_pi_payments_settle")


def test_settle_never_hands_a_payout_to_the_apps_deliver(fake_pi, chain):
    """``deliver`` is for what a Pioneer paid for: a completed payout stays undelivered
    and the settle command leaves it so (it called the shop's ``deliver`` on a reward)."""
    from tests.testapp.models import Delivery

    payment = pay(pioneer(fake_pi, chain), Decimal("1"), "A reward")
    assert payment.status == "completed" and payment.delivered_at is None
    out = settle()
    assert payment.identifier not in out
    assert not Delivery.objects.exists()
    payment.refresh_from_db()
    assert payment.delivered_at is None


def test_a_payout_to_an_address_that_is_no_pi_address_is_refused_and_settle_goes_on(
        fake_pi, chain, monkeypatch):
    """The platform names a recipient that is not an account id: a clear PayoutError,
    nothing signed; settle reports it and still finishes the other payouts (a ValueError
    escaped pay() and stopped the settle command)."""
    alice, bob = pioneer(fake_pi, chain), pioneer(fake_pi, chain, "bob")
    with monkeypatch.context() as crashed:  # alice's payout stops after it was stored
        crashed.setattr(payouts, "resume", lambda payment: payment)
        first = pay(alice, Decimal("2"), "A reward")
    assert first.status == "created"
    fake_pi._wallets[bob.uid] = "not-a-pi-address"  # what the platform will name
    with pytest.raises(payouts.PayoutError, match="pays no valid Pi address"):
        pay(bob, Decimal("1"), "A reward")
    out = settle()
    assert "pays no valid Pi address" in out
    assert PiPayment.objects.get(pk=first.pk).status == "completed"
    assert [t.memo for t in chain.transactions] == [first.identifier]
