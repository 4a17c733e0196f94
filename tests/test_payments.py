"""The payment endpoints against the fake Pi Platform (``responses``): each step, its
retries, lost answers, refusals and conflicts, counted in platform calls, rows, signals
and deliveries."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from django_piauth.models import PiPayment
from django_piauth.providers.pi import get_pi_client
from django_piauth.signals import payment_approved, payment_cancelled, payment_completed
from tests.helpers import all_at_once
from tests.testapp import payments as shop
from tests.testapp.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(fake_pi):
    return SimpleNamespace(token=fake_pi.issue_token(username="alice"),
                           uid=fake_pi.uid_for("alice"))


@pytest.fixture
def bob(fake_pi):
    return SimpleNamespace(token=fake_pi.issue_token(username="bob"), uid=fake_pi.uid_for("bob"))


@pytest.fixture
def sent():
    """The payment signals sent: (step, identifier, had a request)."""
    seen = []

    def receiver(step):
        def receive(sender, payment, request, **kwargs):
            assert sender is PiPayment
            seen.append((step, payment.identifier, request is not None))
        return receive

    receivers = {signal: receiver(name) for signal, name in (
        (payment_approved, "approved"), (payment_completed, "completed"),
        (payment_cancelled, "cancelled"))}
    for signal, receive in receivers.items():
        signal.connect(receive)
    yield seen
    for signal, receive in receivers.items():
        signal.disconnect(receive)


@pytest.fixture(autouse=True)
def _forget_checks():
    shop.checked_ids.clear()


def post(client, step, caller, payment_id=None, **body):
    args = [payment_id] if payment_id is not None else []
    headers = {"HTTP_AUTHORIZATION": f"Bearer {caller.token}"} if caller else {}
    return client.post(reverse(f"piauth:pi-payment-{step}", args=args), json.dumps(body),
                       content_type="application/json", **headers)


def calls(fake_pi, pid):
    """The payment's platform calls so far: {"GET": n, "approve": n, ...}."""
    counts = {"GET": fake_pi.call_count(f"/v2/payments/{pid}", "GET")}
    for action in ("approve", "complete", "cancel"):
        counts[action] = fake_pi.call_count(f"/v2/payments/{pid}/{action}", "POST")
    return counts


def no_calls():
    return {"GET": 0, "approve": 0, "complete": 0, "cancel": 0}


@pytest.fixture
def client():
    return Client()


def approved_payment(client, fake_pi, caller, **metadata):
    pid = fake_pi.create_user_payment(caller.uid, "3.1415926", "A hat", metadata or {"sku": 7})
    assert post(client, "approve", caller, pid).status_code == 200
    return pid


# The happy path ------------------------------------------------------------------------

def test_approve_then_complete(client, fake_pi, alice, sent):
    pid = fake_pi.create_user_payment(alice.uid, "3.1415926", "A hat", {"sku": 7})

    approved = post(client, "approve", alice, pid)

    assert approved.status_code == 200, approved.content
    assert approved.json() == {"identifier": pid, "status": "approved",
                               "amount": "3.1415926", "txid": None, "delivered": False}
    assert calls(fake_pi, pid) == {**no_calls(), "GET": 1, "approve": 1}
    assert fake_pi.payment(pid)["status"]["developer_approved"] is True
    assert shop.checked_ids == [pid]
    row = PiPayment.objects.get()
    assert (row.amount, row.memo, row.metadata, row.pioneer.uid) == (
        Decimal("3.1415926"), "A hat", {"sku": 7}, alice.uid)
    assert row.approved_at is not None and row.created_at is not None
    assert row.from_address == fake_pi.payment(pid)["from_address"]

    txid = fake_pi.submit_transaction(pid)
    completed = post(client, "complete", alice, pid, txid=txid)

    assert completed.status_code == 200, completed.content
    assert completed.json() == {"identifier": pid, "status": "completed",
                                "amount": "3.1415926", "txid": txid, "delivered": True}
    assert calls(fake_pi, pid) == {**no_calls(), "GET": 2, "approve": 1, "complete": 1}
    assert fake_pi.payment(pid)["status"]["developer_completed"] is True
    assert list(Delivery.objects.values_list("identifier", "amount", "from_request")) == [
        (pid, Decimal("3.1415926"), True)]
    row.refresh_from_db()
    assert row.status == "completed" and row.txid == txid
    assert row.completed_at is not None and row.delivered_at is not None
    assert sent == [("approved", pid, True), ("completed", pid, True)]


def test_a_form_body_works_too(client, fake_pi, alice):
    pid = approved_payment(client, fake_pi, alice)
    txid = fake_pi.submit_transaction(pid)
    response = client.post(reverse("piauth:pi-payment-complete", args=[pid]), {"txid": txid},
                           HTTP_AUTHORIZATION=f"Bearer {alice.token}")
    assert response.status_code == 200 and response.json()["status"] == "completed"


# Retries -------------------------------------------------------------------------------

def test_a_retried_approve_calls_nothing_and_signals_nothing(client, fake_pi, alice, sent):
    pid = approved_payment(client, fake_pi, alice)
    before = calls(fake_pi, pid)

    again = post(client, "approve", alice, pid)

    assert again.status_code == 200 and again.json()["status"] == "approved"
    assert calls(fake_pi, pid) == before
    assert shop.checked_ids == [pid]
    assert sent == [("approved", pid, True)]


def test_a_retried_complete_calls_nothing_and_delivers_once(client, fake_pi, alice, sent):
    pid = approved_payment(client, fake_pi, alice)
    txid = fake_pi.submit_transaction(pid)
    assert post(client, "complete", alice, pid, txid=txid).status_code == 200
    before = calls(fake_pi, pid)

    again = post(client, "complete", alice, pid, txid=txid)

    assert again.status_code == 200 and again.json()["status"] == "completed"
    assert calls(fake_pi, pid) == before
    assert Delivery.objects.count() == 1
    assert [step for step, *_ in sent] == ["approved", "completed"]


def test_a_retried_cancel_calls_nothing(client, fake_pi, alice, sent):
    pid = approved_payment(client, fake_pi, alice)
    assert post(client, "cancel", alice, pid).status_code == 200
    before = calls(fake_pi, pid)

    again = post(client, "cancel", alice, pid)

    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    assert calls(fake_pi, pid) == before
    assert [step for step, *_ in sent] == ["approved", "cancelled"]


def test_an_approval_whose_answer_was_lost_is_recorded_without_a_second_write(
        client, fake_pi, alice, sent):
    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat")
    get_pi_client().approve_payment(pid)  # the platform acted; our answer was lost

    response = post(client, "approve", alice, pid)

    assert response.status_code == 200 and response.json()["status"] == "approved"
    assert calls(fake_pi, pid) == {**no_calls(), "GET": 1, "approve": 1}  # the lost one only
    assert shop.checked_ids == []  # approved already: nothing left to decide
    assert sent == [("approved", pid, True)]


def test_a_completion_whose_answer_was_lost_is_recorded_and_delivered_once(
        client, fake_pi, alice, sent):
    pid = approved_payment(client, fake_pi, alice)
    txid = fake_pi.submit_transaction(pid)
    get_pi_client().complete_payment(pid, txid)  # the platform acted; our answer was lost

    response = post(client, "complete", alice, pid, txid=txid)

    assert response.status_code == 200 and response.json()["status"] == "completed"
    assert calls(fake_pi, pid)["complete"] == 1  # the lost one only
    assert Delivery.objects.count() == 1
    assert [step for step, *_ in sent] == ["approved", "completed"]


# Who may pay what ----------------------------------------------------------------------

def test_another_pioneers_payment_is_forbidden(client, fake_pi, alice, bob, sent):
    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat")

    for step, body in (("approve", {}), ("complete", {"txid": "abc"}), ("cancel", {})):
        response = post(client, step, bob, pid, **body)
        assert response.status_code == 403, (step, response.content)
        assert response.json()["code"] == "not_yours"
    response = post(client, "incomplete", bob, paymentId=pid)
    assert response.status_code == 403

    assert calls(fake_pi, pid)["approve"] == calls(fake_pi, pid)["cancel"] == 0
    assert not PiPayment.objects.exists() and sent == []


def test_a_stored_payment_of_another_pioneer_is_forbidden_without_a_call(
        client, fake_pi, alice, bob):
    pid = approved_payment(client, fake_pi, alice)
    before = calls(fake_pi, pid)
    assert post(client, "approve", bob, pid).status_code == 403
    assert post(client, "complete", bob, pid, txid="abc").status_code == 403
    assert calls(fake_pi, pid) == before


def test_an_app_to_user_payment_is_forbidden(client, fake_pi, alice, sent):
    pid = fake_pi.create_app_payment(alice.uid, 1, "A reward")

    response = post(client, "approve", alice, pid)

    assert response.status_code == 403 and response.json()["code"] == "not_user_to_app"
    assert calls(fake_pi, pid) == {**no_calls(), "GET": 1}
    assert not PiPayment.objects.exists() and sent == []


def test_not_signed_in_is_401(client, fake_pi, alice):
    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat")
    response = post(client, "approve", None, pid)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert calls(fake_pi, pid) == no_calls()


def test_a_rejected_token_is_401(client, fake_pi, alice):
    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat")
    response = post(client, "approve", SimpleNamespace(token="forged"), pid)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert calls(fake_pi, pid) == no_calls()


def test_a_pi_session_with_csrf(fake_pi, alice):
    browser = Client(enforce_csrf_checks=True)
    browser.cookies["csrftoken"] = "x" * 32
    csrf = {"HTTP_X_CSRFTOKEN": "x" * 32}
    signed_in = browser.post(reverse("piauth:pi-login"), {"accessToken": alice.token}, **csrf)
    assert signed_in.status_code == 200, signed_in.content
    csrf = {"HTTP_X_CSRFTOKEN": browser.cookies["csrftoken"].value}  # rotated at sign-in
    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat")
    url = reverse("piauth:pi-payment-approve", args=[pid])

    without_csrf = browser.post(url)
    assert without_csrf.status_code == 403
    assert without_csrf.json()["code"] == "permission_denied"
    assert calls(fake_pi, pid) == no_calls()

    with_csrf = browser.post(url, **csrf)
    assert with_csrf.status_code == 200, with_csrf.content
    assert PiPayment.objects.get().status == "approved"


def test_a_session_without_pi_is_401(fake_pi, alice, django_user_model):
    browser = Client()
    browser.force_login(django_user_model.objects.create(username="staff"))
    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat")
    assert browser.post(reverse("piauth:pi-payment-approve", args=[pid])).status_code == 401


# Bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("payment_id", ["a/b", "../me", "..", "x" * 129, "caf\u00e9", "a b",
                                        "a%2Fb"])
def test_a_payment_id_that_is_not_a_path_segment_is_400_with_no_call(
        client, fake_pi, alice, payment_id):
    url = f"/auth/pi/payments/{payment_id}/approve/"
    response = client.post(url, HTTP_AUTHORIZATION=f"Bearer {alice.token}")
    assert response.status_code in (400, 404), response.content
    if response.status_code == 400:
        assert response.json()["code"] == "bad_payment_id"
    assert [call.path for call in fake_pi.calls] == ["/v2/me"]


def test_the_route_takes_any_text_and_the_view_refuses_it(client, alice, fake_pi):
    for payment_id in ("a/b", "../me"):
        url = reverse("piauth:pi-payment-approve", args=[payment_id])
        response = client.post(url, HTTP_AUTHORIZATION=f"Bearer {alice.token}")
        assert response.status_code == 400, (payment_id, response.content)
    assert [call.path for call in fake_pi.calls] == ["/v2/me"]


@pytest.mark.parametrize("body", [{}, {"txid": ""}, {"txid": 7}, {"txid": "a b"},
                                  {"txid": "x" * 256}, {"txid": ["a"]}])
def test_a_missing_or_malformed_txid_is_400(client, fake_pi, alice, body):
    pid = approved_payment(client, fake_pi, alice)
    before = calls(fake_pi, pid)
    response = post(client, "complete", alice, pid, **body)
    assert response.status_code == 400 and response.json()["code"] == "bad_txid"
    assert calls(fake_pi, pid) == before


def test_a_body_that_is_not_json_is_400(client, fake_pi, alice):
    pid = approved_payment(client, fake_pi, alice)
    response = client.post(reverse("piauth:pi-payment-complete", args=[pid]), b"{not json",
                           content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {alice.token}")
    assert response.status_code == 400 and response.json()["code"] == "bad_body"


def test_an_unknown_payment_is_404(client, fake_pi, alice):
    response = post(client, "approve", alice, "no-such-payment")
    assert response.status_code == 404 and response.json()["code"] == "payment_not_found"
    assert not PiPayment.objects.exists()


# Conflicts -----------------------------------------------------------------------------

def test_a_wrong_txid_is_409_and_completes_nothing(client, fake_pi, alice, sent):
    pid = approved_payment(client, fake_pi, alice)
    fake_pi.submit_transaction(pid)

    response = post(client, "complete", alice, pid, txid="deadbeef")

    assert response.status_code == 409 and response.json()["code"] == "txid_mismatch"
    assert calls(fake_pi, pid)["complete"] == 0
    assert PiPayment.objects.get().status == "approved"
    assert not Delivery.objects.exists()
    assert [step for step, *_ in sent] == ["approved"]


def test_a_stored_completion_with_another_txid_is_409(client, fake_pi, alice):
    pid = approved_payment(client, fake_pi, alice)
    txid = fake_pi.submit_transaction(pid)
    assert post(client, "complete", alice, pid, txid=txid).status_code == 200
    response = post(client, "complete", alice, pid, txid="deadbeef")
    assert response.status_code == 409 and response.json()["code"] == "txid_mismatch"


@pytest.mark.parametrize("verified", [False, None])
def test_an_unverified_or_missing_transaction_is_409_until_it_is_verified(
        client, fake_pi, alice, sent, verified):
    pid = approved_payment(client, fake_pi, alice)
    txid = "feed" * 16
    if verified is not None:
        fake_pi.submit_transaction(pid, txid, verified=False)

    response = post(client, "complete", alice, pid, txid=txid)

    assert response.status_code == 409 and response.json()["code"] == "transaction_pending"
    assert calls(fake_pi, pid)["complete"] == 0
    assert PiPayment.objects.get().status == "approved" and not Delivery.objects.exists()

    fake_pi.submit_transaction(pid, txid)  # the SDK retries once the chain caught up
    assert post(client, "complete", alice, pid, txid=txid).status_code == 200
    assert Delivery.objects.count() == 1
    assert [step for step, *_ in sent] == ["approved", "completed"]


def test_completing_an_unapproved_payment_is_409(client, fake_pi, alice):
    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat")
    fake_pi.submit_transaction(pid)
    response = post(client, "complete", alice, pid, txid="abc")
    assert response.status_code == 409 and response.json()["code"] == "not_approved"
    assert calls(fake_pi, pid)["complete"] == 0


def test_a_cancelled_payment_is_409_on_approve(client, fake_pi, alice, sent):
    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat")
    fake_pi.user_cancel(pid)

    response = post(client, "approve", alice, pid)

    assert response.status_code == 409 and response.json()["code"] == "cancelled"
    assert calls(fake_pi, pid) == {**no_calls(), "GET": 1}
    assert PiPayment.objects.get().status == "cancelled"
    assert sent == [("cancelled", pid, True)]


def test_a_refused_payment_is_cancelled_at_the_platform(client, fake_pi, alice, sent):
    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat", {"refuse": True})

    response = post(client, "approve", alice, pid)

    assert response.status_code == 409
    assert response.json() == {"detail": "This item is sold out.", "code": "refused"}
    assert calls(fake_pi, pid) == {**no_calls(), "GET": 1, "cancel": 1}
    assert fake_pi.payment(pid)["status"]["cancelled"] is True
    assert PiPayment.objects.get().status == "cancelled"
    assert sent == [("cancelled", pid, True)]
    again = post(client, "approve", alice, pid)
    assert again.status_code == 409 and calls(fake_pi, pid)["cancel"] == 1


def test_a_completion_answer_without_developer_completed_delivers_nothing(
        client, fake_pi, alice, sent):
    pid = approved_payment(client, fake_pi, alice)
    txid = fake_pi.submit_transaction(pid)
    dto = fake_pi.payment(pid)  # approved, verified, but not completed
    fake_pi.fail_with(200, dto, path=f"/v2/payments/{pid}/complete")

    response = post(client, "complete", alice, pid, txid=txid)

    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert PiPayment.objects.get().status == "approved"
    assert not Delivery.objects.exists()
    assert [step for step, *_ in sent] == ["approved"]


# Cancel and incomplete -----------------------------------------------------------------

def test_cancel_without_a_transaction(client, fake_pi, alice, sent):
    pid = approved_payment(client, fake_pi, alice)
    response = post(client, "cancel", alice, pid)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert calls(fake_pi, pid)["cancel"] == 1
    assert fake_pi.payment(pid)["status"]["cancelled"] is True
    assert PiPayment.objects.get().cancelled_at is not None
    assert [step for step, *_ in sent] == ["approved", "cancelled"]


def test_cancel_with_a_transaction_is_409_money_moved(client, fake_pi, alice):
    pid = approved_payment(client, fake_pi, alice)
    fake_pi.submit_transaction(pid)
    response = post(client, "cancel", alice, pid)
    assert response.status_code == 409 and response.json()["code"] == "transaction_exists"
    assert calls(fake_pi, pid)["cancel"] == 0
    assert PiPayment.objects.get().status == "approved"


def test_cancel_after_the_pioneer_cancelled_in_the_wallet_writes_nothing(
        client, fake_pi, alice):
    pid = approved_payment(client, fake_pi, alice)
    fake_pi.user_cancel(pid)
    assert post(client, "cancel", alice, pid).status_code == 200
    assert calls(fake_pi, pid)["cancel"] == 0
    assert PiPayment.objects.get().status == "cancelled"


def test_an_incomplete_payment_with_a_verified_transaction_is_completed_and_delivered(
        client, fake_pi, alice, sent):
    pid = approved_payment(client, fake_pi, alice)
    txid = fake_pi.submit_transaction(pid)
    # What onIncompletePaymentFound hands the frontend; everything but the id is ignored.
    forged = {"identifier": pid, "amount": 1_000_000, "user_uid": "someone-else",
              "transaction": {"txid": "forged", "verified": True,
                              "_link": "http://127.0.0.1:1/steal"}}

    response = post(client, "incomplete", alice, payment=forged)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "completed" and response.json()["txid"] == txid
    assert fake_pi.calls[-1].path == f"/v2/payments/{pid}/complete"  # the fake refuses
    # a txid that is not the payment's transaction: it was completed with the platform's
    assert list(Delivery.objects.values_list("amount", flat=True)) == [Decimal("3.1415926")]
    assert [step for step, *_ in sent] == ["approved", "completed"]


def test_an_incomplete_payment_without_a_transaction_is_cancelled(client, fake_pi, alice, sent):
    pid = approved_payment(client, fake_pi, alice)
    response = post(client, "incomplete", alice, paymentId=pid)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert calls(fake_pi, pid)["cancel"] == 1
    assert [step for step, *_ in sent] == ["approved", "cancelled"]


def test_an_incomplete_payment_never_seen_here_is_brought_to_an_end(client, fake_pi, alice):
    pid = fake_pi.create_user_payment(alice.uid, 2, "A hat")
    get_pi_client().approve_payment(pid)  # approved by an earlier deployment
    fake_pi.submit_transaction(pid)
    response = post(client, "incomplete", alice, paymentId=pid)
    assert response.status_code == 200 and response.json()["status"] == "completed"
    assert Delivery.objects.count() == 1


def test_an_incomplete_payment_with_an_unverified_transaction_is_409(client, fake_pi, alice):
    pid = approved_payment(client, fake_pi, alice)
    fake_pi.submit_transaction(pid, verified=False)
    response = post(client, "incomplete", alice, paymentId=pid)
    assert response.status_code == 409 and response.json()["code"] == "transaction_pending"


@pytest.mark.parametrize("body", [{}, {"payment": "x"}, {"payment": {"identifier": "a/b"}},
                                  {"paymentId": None}, {"payment": {}}])
def test_an_incomplete_body_without_a_clean_id_is_400(client, fake_pi, alice, body):
    response = post(client, "incomplete", alice, **body)
    assert response.status_code == 400 and response.json()["code"] == "bad_payment_id"
    assert [call.path for call in fake_pi.calls] == ["/v2/me"]


# Delivery ------------------------------------------------------------------------------

def test_a_failed_delivery_is_logged_kept_and_retried_by_the_command(
        client, fake_pi, alice, sent, caplog, capsys):
    pid = approved_payment(client, fake_pi, alice, fail_online=True)
    txid = fake_pi.submit_transaction(pid)

    with caplog.at_level(logging.ERROR, logger="django_piauth"):
        response = post(client, "complete", alice, pid, txid=txid)

    assert response.status_code == 200
    assert response.json()["status"] == "completed" and response.json()["delivered"] is False
    assert not Delivery.objects.exists()  # the handler's own write rolled back
    assert PiPayment.objects.get().delivered_at is None
    assert any("delivery of Pi payment" in r.getMessage() and r.exc_info
               for r in caplog.records)
    assert [step for step, *_ in sent] == ["approved", "completed"]
    before = calls(fake_pi, pid)

    call_command("piauth_pi_payments_settle")

    assert f"{pid}: delivered" in capsys.readouterr().out
    assert list(Delivery.objects.values_list("identifier", "from_request")) == [(pid, False)]
    assert PiPayment.objects.get().delivered_at is not None
    assert calls(fake_pi, pid) == before  # delivery needs no platform call
    call_command("piauth_pi_payments_settle")
    assert Delivery.objects.count() == 1
    assert [step for step, *_ in sent] == ["approved", "completed"]


# Concurrency (threads on one database; two processes on PostgreSQL: test_payments_live) -

def test_twenty_concurrent_completes_make_one_platform_call_and_one_delivery(
        fake_pi, alice, sent):
    pid = approved_payment(Client(), fake_pi, alice)
    txid = fake_pi.submit_transaction(pid)
    fake_pi.reset_calls()

    def one_complete(_index):
        return post(Client(), "complete", alice, pid, txid=txid).status_code

    statuses = all_at_once(one_complete, range(20))

    assert statuses == [200] * 20
    assert calls(fake_pi, pid) == {**no_calls(), "GET": 1, "complete": 1}
    assert Delivery.objects.count() == 1
    assert [step for step, *_ in sent] == ["approved", "completed"]


def test_a_complete_after_an_approval_whose_outcome_was_never_recorded(
        client, fake_pi, alice, sent):
    """A crash between the platform's approval and our write left the row pending."""
    pid = approved_payment(client, fake_pi, alice)
    PiPayment.objects.update(status="pending", approved_at=None)
    txid = fake_pi.submit_transaction(pid)

    response = post(client, "complete", alice, pid, txid=txid)

    assert response.status_code == 200 and response.json()["status"] == "completed"
    assert calls(fake_pi, pid) == {**no_calls(), "GET": 2, "approve": 1, "complete": 1}
    assert Delivery.objects.count() == 1


def test_a_refused_server_api_key_is_503_and_logged(client, fake_pi, alice, caplog):
    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat")
    post(client, "approve", alice, "warm-up-the-verdict")  # /v2/me answered before the swap
    fake_pi.set_server_api_key("another-key-entirely-0123456789")

    with caplog.at_level(logging.ERROR, logger="django_piauth"):
        response = post(client, "approve", alice, pid)

    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert not PiPayment.objects.exists()
    assert "The Pi Platform refused the Server API Key" in caplog.text
    assert "test-server-api-key" not in caplog.text + response.content.decode()


def test_another_platform_refusal_is_409_with_its_code(client, fake_pi, alice):
    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat")
    fake_pi.fail_with(400, {"error": "some_new_code", "error_message": "no"},
                      path=f"/v2/payments/{pid}/approve")

    response = post(client, "approve", alice, pid)

    assert response.status_code == 409 and response.json()["code"] == "some_new_code"
    assert not PiPayment.objects.exists()  # the pending row this call inserted is gone


def test_payments_without_a_server_api_key_are_503_and_logged(client, fake_pi, alice, settings,
                                                              caplog):
    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat")
    settings.PIAUTH = {**settings.PIAUTH, "PI_SERVER_API_KEY": None}
    with caplog.at_level(logging.ERROR, logger="django_piauth"):
        response = post(client, "approve", alice, pid)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "PI_SERVER_API_KEY" in caplog.text
    assert calls(fake_pi, pid) == no_calls() and not PiPayment.objects.exists()


def test_a_step_claim_outlives_the_three_calls_it_covers(client, fake_pi, alice, settings):
    """A fetch, a write and a lost answer's fetch may each take the whole deadline: the
    claim must not expire (and be taken over: a second write) in between."""
    from datetime import timedelta

    from django.utils import timezone

    from django_piauth.claims import CLAIM_MARGIN
    from django_piauth.conf import piauth_settings
    from django_piauth.payment_records import step_claims

    pid = fake_pi.create_user_payment(alice.uid, 1, "A hat")
    assert post(client, "approve", alice, pid).status_code == 200
    payment = PiPayment.objects.get()
    before = timezone.now()
    assert step_claims.try_claim(payment.pk, "holder")
    payment.refresh_from_db()
    covered = payment.step_claimed_until - before
    assert covered >= timedelta(seconds=3 * piauth_settings.deadline + CLAIM_MARGIN - 1)
