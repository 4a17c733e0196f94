"""``manage.py piauth_pi_payments_settle``: every unfinished payment brought to an end by the
rules of the incomplete endpoint, the young ones without a transaction left alone, failed
deliveries retried, a live request's claim respected."""

from __future__ import annotations

import io
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_piauth.models import Pioneer, PiPayment
from django_piauth.signals import payment_cancelled, payment_completed
from tests.testapp.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(fake_pi):
    return SimpleNamespace(token=fake_pi.issue_token(username="alice"),
                           uid=fake_pi.uid_for("alice"))


def approve(fake_pi, alice, **metadata):
    pid = fake_pi.create_user_payment(alice.uid, "1.5", "A hat", metadata or None)
    response = Client().post(reverse("piauth:pi-payment-approve", args=[pid]),
                             HTTP_AUTHORIZATION=f"Bearer {alice.token}")
    assert response.status_code == 200, response.content
    return pid


def settle(*args):
    out = io.StringIO()
    call_command("piauth_pi_payments_settle", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def requests_seen():
    seen = []

    def receive(sender, payment, request, **kwargs):
        seen.append((payment.identifier, request))

    payment_completed.connect(receive)
    payment_cancelled.connect(receive)
    yield seen
    payment_completed.disconnect(receive)
    payment_cancelled.disconnect(receive)


def test_nothing_to_settle():
    assert settle() == "Nothing to settle.\n"


def test_a_young_payment_without_a_transaction_is_left_alone(fake_pi, alice):
    pid = approve(fake_pi, alice)
    out = settle()
    assert f"{pid}: left approved" in out
    assert fake_pi.call_count(f"/v2/payments/{pid}/cancel") == 0
    assert PiPayment.objects.get().status == "approved"


def test_an_old_payment_without_a_transaction_is_cancelled(fake_pi, alice, requests_seen):
    pid = approve(fake_pi, alice)
    PiPayment.objects.update(created_at=timezone.now() - timedelta(hours=2))
    out = settle()
    assert f"{pid}: approved -> cancelled" in out
    assert fake_pi.payment(pid)["status"]["cancelled"] is True
    assert PiPayment.objects.get().status == "cancelled"
    assert requests_seen == [(pid, None)]


def test_the_age_is_an_option(fake_pi, alice):
    pid = approve(fake_pi, alice)
    assert f"{pid}: approved -> cancelled" in settle("--age", "0")


def test_a_verified_transaction_is_completed_and_delivered(fake_pi, alice, requests_seen):
    pid = approve(fake_pi, alice)
    txid = fake_pi.submit_transaction(pid)  # the Pioneer signed; the frontend never came back
    out = settle()
    assert f"{pid}: approved -> completed" in out
    payment = PiPayment.objects.get()
    assert (payment.status, payment.txid) == ("completed", txid)
    assert list(Delivery.objects.values_list("identifier", "from_request")) == [(pid, False)]
    assert requests_seen == [(pid, None)]
    assert "completed" not in settle()  # finished: not looked at again


def test_a_pending_approval_the_platform_confirmed_is_recorded(fake_pi, alice):
    """A crash after the platform approved, before the answer was stored."""
    pid = approve(fake_pi, alice)
    PiPayment.objects.update(status="pending", approved_at=None)
    assert f"{pid}: pending -> approved" in settle()
    assert fake_pi.call_count(f"/v2/payments/{pid}/approve") == 1  # ours, not the command's


def test_an_outage_leaves_everything_as_it_was(fake_pi, alice, settings):
    pid = approve(fake_pi, alice)
    fake_pi.submit_transaction(pid)
    fake_pi.fail_with(503, count=None)
    out = settle()
    assert f"{pid}: left approved (Pi Platform:" in out
    assert PiPayment.objects.get().status == "approved" and not Delivery.objects.exists()
    assert settings.PIAUTH["PI_SERVER_API_KEY"] not in out


def test_a_step_a_live_request_holds_is_not_touched(fake_pi, alice, settings):
    settings.PIAUTH = {**settings.PIAUTH, "PI_PAYMENT_WAIT": 0.1}
    pid = approve(fake_pi, alice)
    fake_pi.submit_transaction(pid)
    PiPayment.objects.update(step_claimed_by="live-request",
                             step_claimed_until=timezone.now() + timedelta(minutes=1))
    calls_before = len(fake_pi.calls)
    assert f"{pid}: left approved (in_progress)" in settle()
    assert len(fake_pi.calls) == calls_before
    # Its holder died: once the claim expires, the command takes it over.
    PiPayment.objects.update(step_claimed_until=timezone.now() - timedelta(seconds=1))
    assert f"{pid}: approved -> completed" in settle()


def test_payouts_are_not_settled_here(fake_pi, alice, django_user_model):
    """App-to-user payments are not this command's user-to-app flow: their rows stay."""
    pid = fake_pi.create_app_payment(alice.uid, 1, "A reward")
    user = django_user_model.objects.create(username="alice")
    pioneer = Pioneer.objects.create(user=user, provider="pi", uid=alice.uid, username="alice")
    PiPayment.objects.create(identifier=pid, pioneer=pioneer, direction="app_to_user",
                             amount=1, status="approved")
    assert settle() == "Nothing to settle.\n"
    assert fake_pi.call_count(f"/v2/payments/{pid}") == 0
