"""PeerID in a real browser: the page's password form, the authorization-code flow through
the fake PeerID's consent page and back, and a session that outlives its tokens."""

import time
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from django_piauth.testing.peerid import REFRESH_PATH
from tests.browser.conftest import calls, peerid_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.example_project]

#: PIAUTH["PEERID_REFRESH_MARGIN"] (its default): a token this close to its expiry is due.
REFRESH_MARGIN = 60


def peerid_user(peerid, login):
    """A PeerID account ``login`` (password ``<login>-pw``); its user id."""
    try:
        return peerid.user_id_for(login)
    except KeyError:
        return peerid.add_user(login, f"{login}-pw")


def peerid_pioneers(demo_site, uid):
    return demo_site.rows("SELECT user_id FROM django_piauth_pioneer "
                          "WHERE provider = 'peerid' AND uid = ?", str(uid))


def signed_in_for_a_moment(page, demo_site, peerid, login):
    """Signed in with the password form with an access token PeerID makes due for a
    refresh about two seconds later; the moment it is due (the stored expiry, less the
    margin: the page shows the expiry to the second only)."""
    peerid.access_lifetime = REFRESH_MARGIN + 2
    try:
        page.goto("/")
        peerid_sign_in(page, login, f"{login}-pw")
        expect(page.get_by_role("heading", name=f"Welcome, {login}")).to_be_visible()
    finally:
        peerid.access_lifetime = 3600
    [(expires,)] = demo_site.rows(
        "SELECT c.expires_at FROM django_piauth_peeridcredential c JOIN django_piauth_pioneer p"
        " ON c.pioneer_id = p.id WHERE p.provider = 'peerid' AND p.uid = ?",
        str(peerid.user_id_for(login)))
    expires_at = datetime.fromisoformat(expires).replace(tzinfo=UTC)
    shown = page.locator("#peerid-expires").inner_text()
    assert shown == expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return expires_at.timestamp() - REFRESH_MARGIN


def wait_until(moment):
    time.sleep(max(0.0, moment - time.time()) + 0.2)


def test_peerid_password_form(page, scenario, demo_site, clean_fakes):
    uid = peerid_user(clean_fakes.peerid, "pat")
    page.goto("/")
    with scenario.step("wrong password: refused, signed out"):
        peerid_sign_in(page, "pat", "not-the-password")
        expect(page.locator("#peerid-login-status")).to_have_text(
            "PeerID rejected this sign-in: PeerID refused these credentials. "
            "You are not signed in.")
        expect(page.locator("#peerid-signed-out")).to_be_visible()
        assert peerid_pioneers(demo_site, uid) == []

    with scenario.step("right password: signed in, the PeerID status"):
        page.locator("#peerid-password").fill("pat-pw")
        page.get_by_role("button", name="Sign in with PeerID", exact=True).click()
        expect(page.get_by_role("heading", name="Welcome, pat")).to_be_visible()
        expect(page.locator("#peerid-uid")).to_have_text(str(uid))
        expect(page.locator("#peerid-refreshed")).to_have_text("never")
        assert len(peerid_pioneers(demo_site, uid)) == 1


def test_peerid_authorization_code(page, scenario, demo_site, clean_fakes):
    peerid = clean_fakes.peerid
    uid = peerid_user(peerid, "quinn")
    page.goto("/")
    with scenario.step("the code link: PeerID's consent page"):
        page.get_by_role("link", name="Sign in with PeerID (authorization code)").click()
        expect(page.get_by_role("heading", name="PeerID: authorize the app")).to_be_visible()
        assert page.url.startswith(f"{peerid.url}/permissions?client_id=42&")
        assert f"redirect_uri={demo_site.url}/auth/peerid/callback/".replace(
            ":", "%3A").replace("/", "%2F") in page.url

    with scenario.step("a wrong password on PeerID's page: asked again"):
        page.locator("input[name=login]").fill("quinn")
        page.locator("input[name=password]").fill("nope")
        page.get_by_role("button", name="Approve").click()
        expect(page.locator("p.error")).to_be_visible()
        assert page.url.startswith(peerid.url)

    with scenario.step("approve on PeerID: back on the site, signed in"):
        page.locator("input[name=password]").fill("quinn-pw")
        with page.expect_response("**/auth/peerid/callback/**") as callback:
            page.get_by_role("button", name="Approve").click()
        assert callback.value.status == 302
        # PeerID's token response names no user: the page greets the PeerID user id.
        expect(page.get_by_role("heading", name=f"Welcome, {uid}")).to_be_visible()
        assert page.url == f"{demo_site.url}/"
        expect(page.locator("#peerid-uid")).to_have_text(str(uid))
        expect(page.locator("#peerid-username")).to_contain_text("none known")
        assert len(peerid_pioneers(demo_site, uid)) == 1


def test_peerid_session_outlives_its_tokens(page, scenario, new_context, demo_site,
                                            clean_fakes):
    peerid = clean_fakes.peerid
    uid = peerid_user(peerid, "rita")
    due = signed_in_for_a_moment(page, demo_site, peerid, "rita")
    expires_before = page.locator("#peerid-expires").inner_text()
    peerid.expire_all_access_tokens()  # PeerID no longer takes the session's access token
    wait_until(due)
    before = len(peerid.calls)
    with scenario.step("access token expired: a reload refreshes it unnoticed"):
        page.reload()
        expect(page.get_by_role("heading", name="Welcome, rita")).to_be_visible()
        expect(page.locator("#peerid-refreshed")).not_to_have_text("never")
        expect(page.locator("#peerid-expires")).not_to_have_text(expires_before)
        assert calls(peerid, REFRESH_PATH, since=before) == [("POST", REFRESH_PATH, 200)]

    before = len(peerid.calls)
    with scenario.step("a PeerID call with the refreshed token"):
        page.get_by_role("button", name="Make a demo PeerID operation (transfer)").click()
        expect(page.locator("#peerid-op-out")).to_contain_text('"op_name": "transfer"')
        expect(page.locator("#peerid-op-out")).to_contain_text('"refreshed": false')
        assert page.locator("#peerid-op-out").inner_text().startswith("200")
        # PeerID took the new access token at once: no second refresh.
        assert calls(peerid, REFRESH_PATH, since=before) == []
        assert peerid.operations_received[-1]["user_id"] == uid

    # Another session whose refresh token dies too (PeerID revoked the grant, say).
    other = new_context().new_page()
    scenario.page = other
    sam = peerid_user(peerid, "sam")
    peerid.refresh_lifetime = 1
    try:
        due = signed_in_for_a_moment(other, demo_site, peerid, "sam")
    finally:
        peerid.refresh_lifetime = None
    [(user_id,)] = peerid_pioneers(demo_site, sam)
    wait_until(max(due, time.time() + 1))
    before = len(peerid.calls)
    with scenario.step("a dead refresh token: asked to sign in again"):
        other.reload()
        expect(other.locator("#sign-in-again")).to_have_text(
            "Your session has ended: please sign in again.")
        expect(other.locator("#peerid-signed-out")).to_be_visible()
        expect(other.get_by_text("Welcome")).to_have_count(0)
        assert other.url == f"{demo_site.url}/?next=/"
        assert calls(peerid, REFRESH_PATH, since=before) == [("POST", REFRESH_PATH, 400)]

    with scenario.step("signed in again: the same account"):
        peerid_sign_in(other, "sam", "sam-pw")
        expect(other.get_by_role("heading", name="Welcome, sam")).to_be_visible()
        expect(other.locator("#peerid-uid")).to_have_text(str(sam))
        assert peerid_pioneers(demo_site, sam) == [(user_id,)]
