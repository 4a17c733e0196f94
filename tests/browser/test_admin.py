"""The site's staff in a real browser: the Django admin lists the Pioneers, searches them
and filters them by provider."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import peerid_sign_in, pi_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.example_project]


def test_admin_pioneers(scenario, new_context, demo_site, clean_fakes):
    # Wide enough for every column of the admin's list.
    page = scenario.page = new_context(viewport={"width": 1400, "height": 900}).new_page()
    # Two Pioneers sign in first, in a browser of their own: one with Pi, one with PeerID.
    pioneer = new_context().new_page()
    clean_fakes.peerid.add_user("victor", "victor-pw")
    victor = clean_fakes.peerid.user_id_for("victor")
    with scenario.step("a Pioneer signs in with Pi", pioneer):
        pioneer.goto("/")
        pi_sign_in(pioneer, "ursula")
        expect(pioneer.get_by_role("heading", name="Welcome, ursula")).to_be_visible()
        ursula = pioneer.locator("#pi-uid").inner_text()
    with scenario.step("another signs in with PeerID", pioneer):
        pioneer.get_by_role("button", name="Sign out").click()
        peerid_sign_in(pioneer, "victor", "victor-pw")
        expect(pioneer.get_by_role("heading", name="Welcome, victor")).to_be_visible()

    with scenario.step("the admin signs in"):
        page.goto("/admin/")
        expect(page).to_have_url(f"{demo_site.url}/admin/login/?next=/admin/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(demo_site.admin_password)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    rows = page.locator("#result_list tbody tr")
    with scenario.step("the Pioneer list shows both"):
        page.get_by_role("link", name="Pioneers").click()
        expect(page.get_by_role("heading", name="Select Pioneer to change")).to_be_visible()
        expect(rows.filter(has_text=ursula)).to_contain_text("Pi Network")
        expect(rows.filter(has_text=ursula)).to_contain_text("ursula")
        expect(rows.filter(has_text="victor")).to_contain_text("PeerID")
        expect(rows.filter(has_text="victor")).to_contain_text(str(victor))
        total = demo_site.rows("SELECT COUNT(*) FROM django_piauth_pioneer")[0][0]
        expect(page.locator("#changelist-form .paginator")).to_contain_text(
            f"{total} Pioneer" + ("s" if total != 1 else ""))

    with scenario.step("search: ursula"):
        page.locator("#searchbar").fill("ursula")
        page.locator("#searchbar").press("Enter")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(ursula)
        expect(page.locator("#changelist-search")).to_contain_text("1 result")

    with scenario.step("filter: PeerID Pioneers only"):
        page.goto("/admin/django_piauth/pioneer/")
        page.locator("#changelist-filter").get_by_role("link", name="PeerID").click()
        expect(page).to_have_url(f"{demo_site.url}/admin/django_piauth/pioneer/?provider__exact=peerid")
        expect(rows.filter(has_text="victor")).to_have_count(1)
        expect(rows.filter(has_text=ursula)).to_have_count(0)
        peerid_rows = demo_site.rows(
            "SELECT COUNT(*) FROM django_piauth_pioneer WHERE provider = 'peerid'")[0][0]
        expect(rows).to_have_count(peerid_rows)
        for text in rows.all_inner_texts():
            assert "PeerID" in text and "Pi Network" not in text
