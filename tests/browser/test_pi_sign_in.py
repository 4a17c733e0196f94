"""Signing in with Pi in a real browser: the page's stand-in for the Pi SDK asks the fake
Pi Platform for a token, the page posts it to ``piauth:pi-login`` with the CSRF cookie."""

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import calls, pi_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.example_project]


def pioneers(demo_site, provider, username):
    """The site's Pioneer rows for a provider and username: (uid, user id)."""
    return demo_site.rows("SELECT uid, user_id FROM django_piauth_pioneer "
                          "WHERE provider = ? AND username = ?", provider, username)


def test_pi_first_visit(page, scenario, new_context, demo_site, clean_fakes):
    pi = clean_fakes.pi
    with scenario.step("first visit, signed out"):
        page.goto("/")
        expect(page.get_by_role("button", name="Sign in with Pi (demo)")).to_be_visible()
        expect(page.get_by_text("Welcome")).to_have_count(0)
        # ensure_csrf_cookie: the page's sign-in sends it back as X-CSRFToken.
        assert "csrftoken" in {cookie["name"] for cookie in page.context.cookies()}

    before = len(pi.calls)
    with scenario.step("sign in with the Pi SDK, see the name"):
        pi_sign_in(page, "olivia")
        expect(page.get_by_role("heading", name="Welcome, olivia")).to_be_visible()
        uid = page.locator("#pi-uid").inner_text()
        assert uid == pi.uid_for("olivia")  # the uid the Pi Platform vouched for
        # The page's Pi SDK stand-in started on the signed-in page too (the shop).
        expect(page.locator("#pay-status")).to_have_text("Ready: signed in with Pi (demo).")
        [(stored_uid, user_id)] = pioneers(demo_site, "pi", "olivia")
        assert stored_uid == uid
        assert calls(pi, "/v2/me", since=before) == [("GET", "/v2/me", 200)]
    django_user = page.locator("#signed-in code").nth(1).inner_text()

    before = len(pi.calls)
    with scenario.step("reload: still signed in"):
        page.reload()
        expect(page.get_by_role("heading", name="Welcome, olivia")).to_be_visible()
        expect(page.locator("#pi-uid")).to_have_text(uid)
        # The session carries it: the page's reload asks the Pi Platform API nothing.
        assert calls(pi, "/v2", since=before) == []

    other = new_context().new_page()
    with scenario.step("a second browser, the same Pioneer: the same account", other):
        other.goto("/")
        pi_sign_in(other, "olivia")
        expect(other.get_by_role("heading", name="Welcome, olivia")).to_be_visible()
        expect(other.locator("#pi-uid")).to_have_text(uid)
        expect(other.locator("#signed-in code").nth(1)).to_have_text(django_user)
        assert pioneers(demo_site, "pi", "olivia") == [(uid, user_id)]
        assert demo_site.rows("SELECT COUNT(*) FROM auth_user WHERE id = ?", user_id) == [(1,)]
    # Each browser has a session of its own.
    assert page.context.cookies() != other.context.cookies()


def test_pi_rejected_token_and_outage(page, scenario, demo_site, clean_fakes):
    pi = clean_fakes.pi
    page.goto("/")

    def forge(route):
        """The SDK hands the page a token the Pi Platform never issued."""
        answer = route.fetch()
        body = answer.json()
        body["accessToken"] = "forged-" + body["accessToken"][::-1]
        route.fulfill(response=answer, body=json.dumps(body))

    page.route(f"{pi.url}/_fake/authenticate", forge)
    before = len(pi.calls)
    with scenario.step("a rejected token: a clear message"):
        with page.expect_response("**/auth/pi/login/") as login:
            pi_sign_in(page, "pablo")
        assert login.value.status == 401
        expect(page.locator("#status")).to_have_text(
            "The Pi Platform rejected this sign-in: Invalid or expired access token. "
            "You are not signed in.")
        expect(page.locator("#signed-out")).to_be_visible()
        assert calls(pi, "/v2/me", since=before) == [("GET", "/v2/me", 401)]
        assert pioneers(demo_site, "pi", "pablo") == []
    page.unroute(f"{pi.url}/_fake/authenticate")

    pi.drop_connection(count=None, path="/v2")  # the Pi Platform API is down
    with scenario.step("the Pi Platform down: try again (503)"):
        with page.expect_response("**/auth/pi/login/") as login:
            pi_sign_in(page, "pablo")
        assert login.value.status == 503
        assert login.value.headers["retry-after"].isdigit()
        expect(page.locator("#status")).to_contain_text("cannot be reached right now (503)")
        expect(page.locator("#status")).to_contain_text("Please try again in")
        expect(page.locator("#signed-out")).to_be_visible()
        assert pioneers(demo_site, "pi", "pablo") == []

    pi.clear_failures()
    with scenario.step("back up: the same page signs in"):
        with page.expect_response("**/auth/pi/login/") as login:
            page.get_by_role("button", name="Sign in with Pi (demo)").click()
        assert login.value.status == 200
        expect(page.get_by_role("heading", name="Welcome, pablo")).to_be_visible()
        assert len(pioneers(demo_site, "pi", "pablo")) == 1

    pi.drop_connection(count=None, path="/v2")
    with scenario.step("down again while signed in: the session holds"):
        page.reload()
        expect(page.get_by_role("heading", name="Welcome, pablo")).to_be_visible()
    pi.clear_failures()
