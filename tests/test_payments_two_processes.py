"""Twenty concurrent completes of one payment spread over two server processes sharing
PostgreSQL: one platform call, one delivery, every caller answered 200."""

import pytest
import requests

from django_piauth.models import PiPayment
from tests.helpers import all_at_once
from tests.testapp.models import Delivery

pytestmark = [pytest.mark.services, pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_twenty_concurrent_completes_over_two_processes_complete_and_deliver_once(
        two_servers, live_fake_pi):
    token = live_fake_pi.issue_token(username="alice")
    uid = live_fake_pi.uid_for("alice")
    headers = {"Authorization": f"Bearer {token}"}
    pid = live_fake_pi.create_user_payment(uid, "4.2", "A hat")
    approved = requests.post(f"{two_servers[0]}/auth/pi/payments/{pid}/approve/",
                             headers=headers, timeout=30)
    assert approved.status_code == 200, approved.text
    txid = live_fake_pi.submit_transaction(pid)
    live_fake_pi.reset_calls()
    live_fake_pi.delay(0.2, path=f"/v2/payments/{pid}")  # all arrive while it is in flight

    def one_complete(index):
        response = requests.post(f"{two_servers[index % 2]}/auth/pi/payments/{pid}/complete/",
                                 json={"txid": txid}, headers=headers, timeout=30)
        return response.status_code, response.json().get("status")

    results = all_at_once(one_complete, range(20))

    assert results == [(200, "completed")] * 20
    assert live_fake_pi.call_count(f"/v2/payments/{pid}/complete", "POST") == 1
    assert live_fake_pi.call_count(f"/v2/payments/{pid}", "GET") == 1
    assert Delivery.objects.filter(identifier=pid).count() == 1
    payment = PiPayment.objects.get(identifier=pid)
    assert (payment.status, payment.txid) == ("completed", txid)
    assert payment.delivered_at is not None and payment.step_claimed_by == ""
