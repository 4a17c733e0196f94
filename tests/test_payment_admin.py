"""Pi payments in the admin: listed, filtered and searched, never added, edited or deleted."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from django_piauth.models import Pioneer, PiPayment

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/django_piauth/pipayment/"


@pytest.fixture
def payments():
    user = get_user_model().objects.create(username="alice")
    pioneer = Pioneer.objects.create(user=user, provider="pi", uid="uid-alice",
                                     username="alice")
    return {
        status: PiPayment.objects.create(
            identifier=f"pay-{status}", pioneer=pioneer, direction="user_to_app",
            amount=Decimal("1.2500000"), network="Pi Testnet", status=status,
            txid=f"tx-{status}" if status == "completed" else "")
        for status in ("approved", "completed", "cancelled")
    }


def test_changelist_shows_payments_with_their_columns(admin_client, payments):
    page = admin_client.get(CHANGELIST).content.decode()
    for payment in payments.values():
        assert payment.identifier in page
    for column in ("column-identifier", "column-pioneer", "column-amount", "column-status",
                   "column-direction", "column-network", "column-txid", "column-created_at"):
        assert column in page


def test_search_and_filters(admin_client, payments):
    for term, found in (("pay-approved", "pay-approved"), ("tx-completed", "pay-completed")):
        response = admin_client.get(CHANGELIST, {"q": term})
        assert [p.identifier for p in response.context["cl"].result_list] == [found]
    for term in ("uid-alice", "alice"):
        response = admin_client.get(CHANGELIST, {"q": term})
        assert len(response.context["cl"].result_list) == 3
    response = admin_client.get(CHANGELIST, {"status__exact": "cancelled"})
    assert list(response.context["cl"].result_list) == [payments["cancelled"]]


def test_payments_cannot_be_added_edited_or_deleted(admin_client, payments):
    payment = payments["approved"]
    assert admin_client.get(CHANGELIST + "add/").status_code == 403
    change = f"{CHANGELIST}{payment.pk}/change/"
    assert admin_client.get(change).status_code == 200  # viewable
    response = admin_client.post(change, {"amount": "999", "status": "completed"})
    assert response.status_code == 403
    assert admin_client.post(f"{CHANGELIST}{payment.pk}/delete/", {"post": "yes"}).status_code \
        == 403
    payment.refresh_from_db()
    assert (payment.amount, payment.status) == (Decimal("1.2500000"), "approved")


def test_the_pioneer_page_lists_its_payments(admin_client, payments):
    pioneer = payments["approved"].pioneer
    page = admin_client.get(f"/admin/django_piauth/pioneer/{pioneer.pk}/change/").content.decode()
    for payment in payments.values():
        assert payment.identifier in page


@pytest.mark.django_db(transaction=True)
def test_the_refresh_action_stores_what_the_platform_says(admin_client, fake_pi, settings):
    from django_piauth.models import PaymentStatus
    from django_piauth.providers.pi import get_pi_client

    uid = fake_pi.uid_for("alice")
    user = get_user_model().objects.create(username="alice")
    pioneer = Pioneer.objects.create(user=user, provider="pi", uid=uid, username="alice")
    pid = fake_pi.create_user_payment(uid, "2.5", "A hat")
    get_pi_client().approve_payment(pid)
    payment = PiPayment.objects.create(identifier=pid, pioneer=pioneer, direction="user_to_app",
                                       amount=Decimal("2.5"), status=PaymentStatus.APPROVED)
    fake_pi.user_cancel(pid)
    gone = PiPayment.objects.create(identifier="gone-at-platform", pioneer=pioneer,
                                    direction="user_to_app", amount=Decimal(1))
    writes_before = sum(1 for call in fake_pi.calls if call.method == "POST")

    response = admin_client.post(CHANGELIST, {
        "action": "refresh_from_platform", "_selected_action": [payment.pk, gone.pk]},
        follow=True)

    assert response.status_code == 200
    text = response.content.decode()
    assert "Refreshed 1 payment(s)" in text and "gone-at-platform (PaymentNotFound)" in text
    payment.refresh_from_db()
    assert payment.status == "cancelled" and payment.cancelled_at is not None
    assert sum(1 for call in fake_pi.calls if call.method == "POST") == writes_before
    assert settings.PIAUTH["PI_SERVER_API_KEY"] not in text
