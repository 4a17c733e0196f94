"""Paying with Pi in a real browser: the page plays the Pi SDK's ``Pi.createPayment`` and
the wallet against the fake Pi Platform; the server approves and completes through
``piauth:pi-payment-approve`` / ``-complete``, and an abandoned payment is brought to an
end on the next visit (``onIncompletePaymentFound`` -> ``piauth:pi-payment-incomplete``)."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import calls, pi_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.example_project]

PAYMENT_ID = re.compile(r"[Pp]ayment \(?([A-Za-z0-9_-]+)\)?")


def payment_id_in(text):
    return PAYMENT_ID.search(text).group(1)


def purchase_of(demo_site, payment_id):
    return demo_site.rows("SELECT item, amount FROM shop_purchase "
                          "WHERE payment_identifier = ?", payment_id)


def status_of(demo_site, payment_id):
    return demo_site.rows("SELECT status, txid FROM django_piauth_pipayment "
                          "WHERE identifier = ?", payment_id)


def platform_calls(pi, payment_id, since=0):
    """The Pi Platform API calls about the payment, after its id: ("GET", ""), ...."""
    prefix = f"/v2/payments/{payment_id}"
    return [(method, path[len(prefix):], status)
            for method, path, status in calls(pi, prefix, since=since)]


def test_shop_buy_and_recover(page, scenario, demo_site, clean_fakes):
    pi = clean_fakes.pi
    status = page.locator("#pay-status")
    purchases = page.locator("#purchases li")
    with scenario.step("signed in with Pi: the shop is ready"):
        page.goto("/")
        pi_sign_in(page, "wanda")
        expect(page.get_by_role("heading", name="Welcome, wanda")).to_be_visible()
        expect(status).to_have_text("Ready: signed in with Pi (demo).")
        expect(page.locator("#no-purchases")).to_have_text("Nothing bought yet.")
        expect(purchases).to_have_count(0)

    with scenario.step("buy a sticker: paid, the purchase listed"):
        page.get_by_role("button", name="Buy a sticker for 1 Pi").click()
        expect(status).to_contain_text("is completed and your sticker is delivered.")
        bought = payment_id_in(status.inner_text())
        expect(purchases).to_have_count(1)
        expect(purchases.first).to_have_text(f"Sticker for 1 Pi {bought}")
        expect(page.locator("#no-purchases")).to_be_hidden()
        assert purchase_of(demo_site, bought) == [("sticker", 1)]
        assert status_of(demo_site, bought)[0][0] == "completed"
        assert platform_calls(pi, bought) == [("GET", "", 200), ("POST", "/approve", 200),
                                              ("GET", "", 200), ("POST", "/complete", 200)]

    with scenario.step("reload: the purchase stays"):
        page.reload()
        expect(purchases).to_have_count(1)
        expect(purchases.first).to_contain_text(bought)
        expect(status).to_have_text("Ready: signed in with Pi (demo).")

    with scenario.step("a payment approved and signed, the page closed before completion"):
        page.get_by_role("button", name="Start a payment and abandon it").click()
        expect(status).to_contain_text("abandoned before the server completed it")
        abandoned = payment_id_in(status.inner_text())
        assert abandoned != bought
        expect(purchases).to_have_count(1)
        [(state, txid)] = status_of(demo_site, abandoned)
        assert (state, txid) == ("approved", "")  # the server never heard of the txid
        assert purchase_of(demo_site, abandoned) == []
    page.close()

    since = len(pi.calls)
    visit = scenario.page = page.context.new_page()  # the next visit, the same session
    status, purchases = visit.locator("#pay-status"), visit.locator("#purchases li")
    with scenario.step("the next visit: the abandoned payment is completed and delivered"):
        with visit.expect_response("**/auth/pi/payments/incomplete/") as incomplete:
            visit.goto("/")
        assert incomplete.value.status == 200
        expect(status).to_have_text(f"An unfinished payment ({abandoned}) was completed and "
                                    "delivered: see your purchases.")
        expect(purchases).to_have_count(2)
        expect(purchases.filter(has_text=abandoned)).to_have_text(f"Sticker for 1 Pi {abandoned}")
        assert purchase_of(demo_site, abandoned) == [("sticker", 1)]
        txid = pi.payment(abandoned)["transaction"]["txid"]
        assert status_of(demo_site, abandoned) == [("completed", txid)]
        assert platform_calls(pi, abandoned, since) == [("GET", "", 200),
                                                        ("POST", "/complete", 200)]

    # Another way to abandon one: approved by the server, then the wallet closed unsigned.
    visit.route(f"{pi.url}/_fake/sign_transaction", lambda route: route.abort())
    with scenario.step("a payment approved, the wallet closed before signing"):
        with visit.expect_response("**/auth/pi/payments/*/approve/") as approve:
            visit.get_by_role("button", name="Buy a sticker for 1 Pi").click()
        unsigned = approve.value.url.rstrip("/").split("/")[-2]
        expect(status).to_contain_text("The payment stopped")
        assert status_of(demo_site, unsigned)[0][0] == "approved"
        assert pi.payment(unsigned)["transaction"] is None
    visit.close()

    since = len(pi.calls)
    last = scenario.page = page.context.new_page()
    status, purchases = last.locator("#pay-status"), last.locator("#purchases li")
    with scenario.step("the next visit: the unsigned payment is cancelled, no Pi moved"):
        last.goto("/")
        expect(status).to_have_text(f"An unfinished payment ({unsigned}) was cancelled (it had "
                                    "no blockchain transaction): no Pi moved.")
        expect(purchases).to_have_count(2)
        expect(purchases.filter(has_text=unsigned)).to_have_count(0)
        assert status_of(demo_site, unsigned)[0][0] == "cancelled"
        assert pi.payment(unsigned)["status"]["cancelled"] is True
        assert ("POST", "/cancel", 200) in platform_calls(pi, unsigned, since)
        assert purchase_of(demo_site, unsigned) == []
