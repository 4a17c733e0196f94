"""The fake PeerID, through plain ``requests``, served both ways: ``responses`` and a real
loopback server (the ``live`` ones)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from django_piauth.testing import (
    DEFAULT_PEERID_CLIENT_ID,
    DEFAULT_PEERID_CLIENT_SECRET,
    FakePeerID,
    LoopbackServer,
    serve_with_responses,
)

BASE = "https://peerid.example"
SECRET = DEFAULT_PEERID_CLIENT_SECRET
CLIENT = DEFAULT_PEERID_CLIENT_ID
PASSWORD = "correct horse"
ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r"[A-Za-z0-9]{124}")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@dataclass
class Peer:
    """A fake on a controllable clock, the URL it answers at, a session and a user."""

    fake: FakePeerID
    url: str
    http: requests.Session
    clock: list[float]
    user_id: int = 0
    secrets_seen: list[str] = field(default_factory=list)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 5)
        return self.http.post(f"{self.url}{path}", **kwargs)

    def token(self, login: str = "alice", password: str | None = PASSWORD,
              client_id: Any = CLIENT, **extra: Any) -> requests.Response:
        body = {"login": login, "client_id": client_id, **extra}
        if password is not None:
            body["password"] = password
        return self.post("/api/v1/auth/token", json=body)

    def tokens(self, **kwargs: Any) -> dict[str, Any]:
        response = self.token(**kwargs)
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        self.secrets_seen += [result["token"], result["refresh_token"]]
        return result

    def exchange(self, code: str, client_id: Any = CLIENT,
                 client_secret: str = SECRET) -> requests.Response:
        return self.post("/api/v1/auth/exchange",
                         json={"code": code, "client_id": client_id,
                               "client_secret": client_secret})

    def refresh(self, refresh_token: str, client_id: Any = CLIENT,
                client_secret: str = SECRET) -> requests.Response:
        return self.post("/api/v1/auth/refreshtoken",
                         json={"refresh_token": refresh_token, "client_id": client_id,
                               "client_secret": client_secret})

    def operations(self, access_token: str | None, client_id: Any = CLIENT,
                   body: Any = None, path: str = "/api/v1/app/operations"
                   ) -> requests.Response:
        headers = {}
        if access_token is not None:
            headers["Authorization"] = f"Bearer {access_token}"
        if client_id is not None:
            headers["ClientID"] = str(client_id)
        if body is None:
            body = {"operations": [{"op_name": "transfer", "amount": 1}]}
        return self.post(path, json=body, headers=headers)

    def authorize(self, state: str = "s1", redirect_uri: str = "https://shop.example/cb",
                  client_id: Any = CLIENT) -> requests.Response:
        return self.http.get(f"{self.url}/permissions", allow_redirects=False, timeout=5,
                             params={"client_id": client_id, "redirect_uri": redirect_uri,
                                     "state": state})


@pytest.fixture(params=["responses", pytest.param("live", marks=pytest.mark.live)])
def peer(request) -> Iterator[Peer]:
    clock = [1_700_000_000.0]
    fake = FakePeerID(clock=lambda: clock[0])
    user_id = fake.add_user("alice", PASSWORD, email="Alice@Example.com", mobile="555-123-4567")
    with requests.Session() as session:
        session.trust_env = False  # no proxy between us and loopback
        if request.param == "responses":
            with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
                serve_with_responses(fake, rsps, BASE)
                yield Peer(fake, BASE, session, clock, user_id)
        else:
            with LoopbackServer(fake) as server:
                yield Peer(fake, server.url, session, clock, user_id)


def assert_token_result(result: dict[str, Any], user_id: int, app_id: int = CLIENT) -> None:
    assert TOKEN.fullmatch(result["token"])
    assert TOKEN.fullmatch(result["refresh_token"])
    assert result["token"] != result["refresh_token"]
    assert (result["user_id"], result["app_id"]) == (user_id, app_id)
    assert result["scope"] == [0]
    assert isinstance(result["id"], int)
    assert ISO.fullmatch(result["expires"])
    assert ISO.fullmatch(result["created"])
    assert datetime.fromisoformat(result["expires"]).tzinfo is not None


# Password flow --------------------------------------------------------------------------

def test_password_flow_json(peer):
    response = peer.token()
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == 200
    assert_token_result(body["result"], peer.user_id)
    expires = datetime.fromisoformat(body["result"]["expires"]).timestamp()
    assert expires == peer.clock[0] + 3600
    assert peer.fake.access_token_valid(body["result"]["token"])


def test_password_flow_form_with_a_string_client_id_and_email_login(peer):
    response = peer.post("/api/v1/auth/token",
                         data={"login": "alice@example.com", "password": PASSWORD,
                               "client_id": str(CLIENT)})
    assert response.status_code == 200
    assert_token_result(response.json()["result"], peer.user_id)


def test_password_flow_by_mobile_and_by_both(peer):
    assert peer.token(password=None, mobile="555-123-4567").status_code == 200
    assert peer.token(mobile="555-123-4567").status_code == 200
    # Both given: both are checked.
    assert peer.token(mobile="555-000-0000").status_code == 400
    assert peer.token(password="wrong", mobile="555-123-4567").status_code == 400


@pytest.mark.parametrize(("change", "field"), [
    ({"password": "wrong"}, "login"),
    ({"login": "nobody"}, "login"),
    ({"login": "ALICE"}, "login"),  # usernames are exact; e-mail addresses are not
    ({"password": None}, "password"),
    ({"password": ""}, "password"),
    ({"client_id": 7}, "client_id"),
    ({"client_id": "forty-two"}, "client_id"),
    ({"client_id": True}, "client_id"),
    ({"login": 5}, "login"),
])
def test_password_flow_rejections_are_400_with_field_errors(peer, change, field):
    response = peer.token(**{"login": "alice", "password": PASSWORD, **change})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert field in body["error"]
    assert peer.fake.call_count("/api/v1/auth/token") == 1


def test_no_client_secret_is_needed_or_checked_in_the_password_flow(peer):
    assert peer.token(client_secret="anything").status_code == 200


# Body only -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/auth/token", "/api/v1/auth/exchange",
                                  "/api/v1/auth/refreshtoken"])
def test_parameters_only_in_the_query_string_get_400(peer, path):
    tokens = peer.tokens()
    code = peer.fake.issue_code(peer.user_id)
    params = {"login": "alice", "password": PASSWORD, "client_id": CLIENT, "code": code,
              "client_secret": SECRET, "refresh_token": tokens["refresh_token"]}
    response = peer.post(path, params=params)
    assert response.status_code == 400
    assert response.json()["status"] == 400
    assert "client_id" in response.json()["error"]
    # The body is what counts: the same parameters there work.
    assert peer.post(path, json=params).status_code == 200


def test_body_needs_a_content_type_the_server_parses(peer):
    raw = b'{"login": "alice", "password": "correct horse", "client_id": 42}'
    assert peer.post("/api/v1/auth/token", data=raw).status_code == 400  # no Content-Type
    assert peer.post("/api/v1/auth/token", data=raw,
                     headers={"Content-Type": "text/plain"}).status_code == 400
    assert peer.post("/api/v1/auth/token", data=raw,
                     headers={"Content-Type": "application/json; charset=utf-8"}
                     ).status_code == 200
    broken = peer.post("/api/v1/auth/token", data=b"{not json",
                       headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["status"] == 400
    repeated = peer.post("/api/v1/auth/token",
                         data=b"login=alice&login=bob&password=correct+horse&client_id=42",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert repeated.status_code == 400


def test_unknown_routes_and_methods_get_405(peer):
    assert peer.http.get(f"{peer.url}/api/v1/auth/token", timeout=5).status_code == 405
    response = peer.post("/api/v1/nothing", json={})
    assert response.status_code == 405
    assert response.json() == {"error": "Method not allowed", "status": 405}


# Authorization-code flow -------------------------------------------------------------

def test_permissions_page_approves_for_the_browser_user_and_the_code_works_once(peer):
    peer.fake.browser_user = peer.user_id
    response = peer.authorize(state="xyz")
    assert response.status_code == 302
    location = response.headers["Location"]
    match = re.fullmatch(r"https://shop\.example/cb\?code=([A-Za-z0-9]{24})&state=xyz", location)
    assert match, location
    code = match[1]
    exchanged = peer.exchange(code)
    assert exchanged.status_code == 200
    result = exchanged.json()["result"]
    assert_token_result(result, peer.user_id)
    assert isinstance(result["grantcode_id"], int)
    again = peer.exchange(code)
    assert again.status_code == 400
    assert again.json()["error"] == {"code": "invalid code"}


def test_state_comes_back_as_given_not_url_encoded(peer):
    peer.fake.browser_user = peer.user_id
    location = peer.authorize(state="a/b+c=d").headers["Location"]
    assert location.endswith("&state=a/b+c=d")


def test_permissions_form_sign_in_approve_and_cancel(peer):
    page = peer.authorize(state="st")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<form" in page.text
    assert 'name=state value="st"' in page.text
    form = {"client_id": str(CLIENT), "redirect_uri": "https://shop.example/cb",
            "state": "st", "login": "alice", "password": "wrong", "action": "approve"}
    wrong = peer.post("/permissions", data=form, allow_redirects=False)
    assert wrong.status_code == 400
    assert "Invalid email/username or password" in wrong.text
    cancelled = peer.post("/permissions", data={**form, "action": "cancel"},
                          allow_redirects=False)
    assert cancelled.status_code == 200
    assert "Location" not in cancelled.headers
    approved = peer.post("/permissions", data={**form, "password": PASSWORD},
                         allow_redirects=False)
    assert approved.status_code == 302
    code = re.search(r"code=(\w+)&state=st$", approved.headers["Location"])[1]
    assert peer.exchange(code).json()["result"]["user_id"] == peer.user_id


@pytest.mark.parametrize("query", [
    {"client_id": "7", "redirect_uri": "https://shop.example/cb"},
    {"client_id": "x", "redirect_uri": "https://shop.example/cb"},
    {"redirect_uri": "https://shop.example/cb"},
    {"client_id": str(CLIENT), "redirect_uri": "/relative"},
    {"client_id": str(CLIENT)},
])
def test_permissions_refuses_unknown_apps_and_bad_redirects(peer, query):
    peer.fake.browser_user = peer.user_id
    response = peer.http.get(f"{peer.url}/permissions", params=query, timeout=5,
                             allow_redirects=False)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_exchange_rejections(peer):
    peer.fake.add_app(7, "other-secret")
    code = peer.fake.issue_code(peer.user_id)
    assert peer.exchange(code, client_secret="wrong").json()["error"] == {
        "client_id": "client_id or client_secret invalid"}
    assert peer.exchange(code, client_id=99).status_code == 400
    other = peer.exchange(code, client_id=7, client_secret="other-secret")
    assert (other.status_code, other.json()["error"]) == (
        400, {"code": "code doesn't belong to this app"})
    assert peer.exchange("not-a-code").status_code == 400
    # None of that used the code up.
    assert peer.exchange(code).status_code == 200
    form = peer.post("/api/v1/auth/exchange",
                     data={"code": peer.fake.issue_code(peer.user_id), "client_id": "42",
                           "client_secret": SECRET})
    assert form.status_code == 200


def test_codes_expire(peer):
    code = peer.fake.issue_code(peer.user_id)
    peer.clock[0] += 600
    assert peer.exchange(code).status_code == 400


# Refresh ----------------------------------------------------------------------------------

def test_refresh_rotates_both_tokens_and_the_old_ones_stop_working(peer):
    first = peer.tokens()
    assert peer.operations(first["token"]).status_code == 200
    peer.clock[0] += 10
    response = peer.refresh(first["refresh_token"])
    assert response.status_code == 200
    second = response.json()["result"]
    assert_token_result(second, peer.user_id)
    assert second["token"] != first["token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["id"] == first["id"]  # the same row, rotated in place
    assert second["created"] == first["created"]
    assert datetime.fromisoformat(second["expires"]).timestamp() == peer.clock[0] + 3600

    old_call = peer.operations(first["token"])
    assert (old_call.status_code, old_call.json()) == (
        401, {"error": "Access Token invalid or expired", "status": 401})
    old_refresh = peer.refresh(first["refresh_token"])
    assert (old_refresh.status_code, old_refresh.json()) == (
        400, {"error": {"refresh_token": "invalid refresh token"}, "status": 400})
    assert peer.operations(second["token"]).status_code == 200
    assert peer.refresh(second["refresh_token"]).status_code == 200
    assert not peer.fake.access_token_valid(second["token"])
    assert not peer.fake.refresh_token_valid(second["refresh_token"])


def test_refresh_rejections(peer):
    tokens = peer.tokens()
    peer.fake.add_app(7, "other-secret")
    assert peer.refresh(tokens["refresh_token"], client_secret="wrong").json()["error"] == {
        "client_id": "client_id or client_secret invalid"}
    # Another app's credentials cannot refresh this app's token.
    assert peer.refresh(tokens["refresh_token"], 7, "other-secret").status_code == 400
    assert peer.refresh("x" * 124).status_code == 400
    assert peer.refresh(tokens["refresh_token"]).status_code == 200


def test_revoked_refresh_token(peer):
    tokens = peer.tokens()
    peer.fake.revoke_refresh_token(tokens["refresh_token"])
    assert peer.refresh(tokens["refresh_token"]).status_code == 400
    assert peer.operations(tokens["token"]).status_code == 200  # the access token lives on
    with pytest.raises(KeyError):
        peer.fake.revoke_refresh_token("unknown")


def test_refresh_tokens_can_expire():
    clock = [1_700_000_000.0]
    fake = FakePeerID(refresh_lifetime=60, clock=lambda: clock[0])
    fake.add_user()
    tokens = fake.issue_tokens(101)
    clock[0] += 59
    assert fake.refresh_token_valid(tokens["refresh_token"])
    clock[0] += 1
    assert not fake.refresh_token_valid(tokens["refresh_token"])


# Token calls -------------------------------------------------------------------------------

def test_operations_echo(peer):
    tokens = peer.tokens()
    body = {"operations": [{"op_name": "transfer", "from": "1.2.3", "amount": 5}]}
    response = peer.operations(tokens["token"], body=body)
    assert response.status_code == 200
    assert response.json() == {
        "result": [{"op_name": "transfer", "from": "1.2.3", "amount": 5, "id": 0}],
        "status": 200}
    assert peer.fake.operations_received == [
        {"path": "/api/v1/app/operations", "user_id": peer.user_id, "app_id": CLIENT,
         "body": body}]


def test_clientid_header_is_required(peer):
    tokens = peer.tokens()
    missing = peer.operations(tokens["token"], client_id=None)
    assert (missing.status_code, missing.json()) == (
        401, {"error": "unauthorized", "status": 401})
    assert peer.operations(None).json()["error"] == "unauthorized"
    basic = peer.post("/api/v1/app/operations", json={"operations": []},
                      headers={"Authorization": f"Basic {tokens['token']}",
                               "ClientID": str(CLIENT)})
    assert basic.status_code == 401
    assert peer.operations(tokens["token"], client_id="abc").status_code == 401
    assert peer.fake.operations_received == []


def test_a_token_for_another_app_is_refused(peer):
    peer.fake.add_app(7, "other-secret", scope=(0, 1))
    ours = peer.tokens()
    theirs = peer.fake.issue_tokens(peer.user_id, 7)
    assert theirs["app_id"] == 7
    assert theirs["scope"] == [0, 1]
    # Another app's token with our ClientID, and our token with theirs: both 401.
    assert peer.operations(theirs["token"]).status_code == 401
    assert peer.operations(ours["token"], client_id=7).status_code == 401
    assert peer.operations(theirs["token"], client_id=7).status_code == 200
    # A password sign-in for the other app gives a token for the other app.
    other = peer.tokens(client_id=7)
    assert other["app_id"] == 7


def test_access_tokens_expire_on_the_fakes_clock(peer):
    tokens = peer.tokens()
    peer.clock[0] += 3599
    assert peer.operations(tokens["token"]).status_code == 200
    peer.clock[0] += 1
    assert peer.operations(tokens["token"]).status_code == 401
    # An expired access token still refreshes.
    assert peer.refresh(tokens["refresh_token"]).status_code == 200


def test_forced_expiry(peer):
    first, second = peer.tokens(), peer.tokens()
    peer.fake.expire_access_token(first["token"])
    assert peer.operations(first["token"]).status_code == 401
    assert peer.operations(second["token"]).status_code == 200
    peer.fake.expire_all_access_tokens()
    assert peer.operations(second["token"]).status_code == 401
    fresh = peer.refresh(second["refresh_token"]).json()["result"]
    assert peer.operations(fresh["token"]).status_code == 200
    with pytest.raises(KeyError):
        peer.fake.expire_access_token("unknown")


@pytest.mark.parametrize("body", [{}, {"operations": []}, {"operations": "transfer"},
                                  {"operations": [{"op_name": "limit_order_create"}]},
                                  {"operations": [{"op_name": "no_such_op"}]},
                                  {"operations": [{"amount": 1}]}])
def test_operations_body_is_checked_after_the_token(peer, body):
    tokens = peer.tokens()
    response = peer.operations(tokens["token"], body=body)
    assert response.status_code == 400
    assert peer.operations("bad", body=body).status_code == 401


def test_broadcast(peer):
    tokens = peer.tokens()
    transaction = {"ref_block_num": 1, "ref_block_prefix": 2, "expiration": "x",
                   "operations": [[0, {"amount": 1}]], "signatures": []}
    response = peer.operations(tokens["token"], body={"transaction": transaction},
                               path="/api/v1/app/broadcast")
    assert response.status_code == 200
    assert response.json()["result"]["trx"] == transaction
    bad = peer.operations(tokens["token"], body={"transaction": {"operations": [[5, {}]]}},
                          path="/api/v1/app/broadcast")
    assert bad.status_code == 400
    assert peer.operations(None, path="/api/v1/app/broadcast").status_code == 401


# Failure injection ------------------------------------------------------------------------

def test_injected_500_has_the_peerid_body(peer):
    peer.fake.fail_with(500)
    response = peer.token()
    assert (response.status_code, response.json()) == (
        500, {"error": "server side error", "status": 500})
    assert peer.token().status_code == 200
    peer.fake.fail_with(503, path="/api/v1/auth/refreshtoken", count=None)
    assert peer.token().status_code == 200
    tokens = peer.tokens()
    assert peer.refresh(tokens["refresh_token"]).json() == {
        "error": "Service Unavailable", "status": 503}
    peer.fake.clear_failures()
    assert peer.refresh(tokens["refresh_token"]).status_code == 200  # nothing rotated
    peer.fake.fail_with(401, path="/api/v1/app")
    assert peer.operations(peer.tokens()["token"]).json()["status"] == 401
    peer.fake.fail_with(502, body=b"<html>bad gateway</html>", content_type="text/html")
    assert peer.token().text == "<html>bad gateway</html>"


def test_garbage_drop_and_delay(peer):
    peer.fake.garbage()
    response = peer.token()
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    peer.fake.drop_connection()
    with pytest.raises(requests.ConnectionError):
        peer.token()
    peer.fake.delay(0.5, count=1)
    with pytest.raises(requests.ReadTimeout):
        peer.post("/api/v1/auth/token", json={}, timeout=(1, 0.1))
    assert peer.token().status_code == 200


# Calls and secrets -----------------------------------------------------------------------

def test_calls_are_counted_per_path_without_secrets(peer):
    tokens = peer.tokens()
    code = peer.fake.issue_code(peer.user_id)
    peer.exchange(code)
    new = peer.refresh(tokens["refresh_token"]).json()["result"]
    peer.refresh(tokens["refresh_token"])
    peer.operations(new["token"])
    peer.post(f"/api/v1/auth/token?password={PASSWORD}&client_secret={SECRET}")
    assert peer.fake.call_count("/api/v1/auth/refreshtoken") == 2
    assert peer.fake.call_count("/api/v1/auth/token") == 2
    assert peer.fake.call_count("/api/v1/auth/exchange") == 1
    assert peer.fake.call_count("/api/v1/app/operations", method="post") == 1
    assert [(c.path, c.status) for c in peer.fake.calls][-3:] == [
        ("/api/v1/auth/refreshtoken", 400), ("/api/v1/app/operations", 200),
        ("/api/v1/auth/token", 400)]
    assert peer.fake.calls[-2].auth_scheme == "Bearer"
    recorded = repr(peer.fake.calls) + repr(peer.fake) + str(peer.fake)
    for secret in [*peer.secrets_seen, new["token"], new["refresh_token"], code, SECRET,
                   PASSWORD]:
        assert secret not in recorded


@pytest.mark.live
def test_concurrent_refreshes_of_one_token_rotate_once():
    fake = FakePeerID()
    user_id = fake.add_user()
    tokens = fake.issue_tokens(user_id)
    statuses: list[int] = []
    barrier = threading.Barrier(20)

    def refresh(url: str) -> None:
        with requests.Session() as session:
            session.trust_env = False
            barrier.wait()
            statuses.append(session.post(
                f"{url}/api/v1/auth/refreshtoken", timeout=10,
                json={"refresh_token": tokens["refresh_token"], "client_id": CLIENT,
                      "client_secret": SECRET}).status_code)

    with LoopbackServer(fake) as server:
        threads = [threading.Thread(target=refresh, args=(server.url,)) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(statuses) == [200] + [400] * 19
    assert fake.call_count("/api/v1/auth/refreshtoken") == 20


# The fake's own API -------------------------------------------------------------------

def test_constructor_and_helpers_check_their_arguments():
    with pytest.raises(ValueError):
        FakePeerID(access_lifetime=0)
    with pytest.raises(ValueError):
        FakePeerID(refresh_lifetime=-1)
    with pytest.raises(ValueError):
        FakePeerID(client_id="42")  # type: ignore[arg-type]
    fake = FakePeerID(7, "s")
    assert (fake.client_id, fake.client_secret) == (7, "s")
    with pytest.raises(ValueError):
        fake.add_app(8, "")
    alice = fake.add_user("alice", email="a@example.com")
    with pytest.raises(ValueError):
        fake.add_user("alice")
    with pytest.raises(ValueError):
        fake.add_user("A@example.com")
    assert fake.user_id_for("A@EXAMPLE.com") == alice
    with pytest.raises(KeyError):
        fake.user_id_for("bob")
    with pytest.raises(KeyError):
        fake.issue_tokens(999)
    with pytest.raises(KeyError):
        fake.issue_code(alice, 8)
    assert fake.add_user("bob") == alice + 1


# The fixtures ---------------------------------------------------------------------------

def test_fake_peerid_fixture_answers_at_the_configured_url(fake_peerid, settings):
    from django_piauth.conf import piauth_settings

    assert fake_peerid.url == piauth_settings.PEERID_URL.rstrip("/")
    assert fake_peerid.client_id == piauth_settings.PEERID_CLIENT_ID
    assert fake_peerid.client_secret == piauth_settings.PEERID_CLIENT_SECRET
    assert settings.PIAUTH["PI_API_URL"]  # other keys kept
    fake_peerid.add_user("zoe", "pw")
    response = requests.post(f"{piauth_settings.PEERID_URL}/api/v1/auth/token", timeout=5,
                             json={"login": "zoe", "password": "pw",
                                   "client_id": piauth_settings.PEERID_CLIENT_ID})
    assert response.json()["result"]["app_id"] == fake_peerid.client_id
    assert fake_peerid.call_count("/api/v1/auth/token") == 1
    with pytest.raises(requests.ConnectionError):  # nothing else leaves the process
        requests.get("https://example.com/", timeout=5)


def test_fake_peerid_fixture_uses_the_configured_app(settings):
    settings.PIAUTH = {**settings.PIAUTH, "PEERID_CLIENT_ID": 9,
                       "PEERID_CLIENT_SECRET": "configured-secret"}
    from django_piauth.testing.pytest_plugin import _peerid_for

    fake = _peerid_for(settings)
    assert (fake.client_id, fake.client_secret) == (9, "configured-secret")
    assert settings.PIAUTH["PEERID_CLIENT_SECRET"] == "configured-secret"


def test_fake_pi_and_fake_peerid_together(fake_pi, fake_peerid):
    from django_piauth.conf import piauth_settings

    token = fake_pi.issue_token(username="alice")
    me = requests.get(f"{piauth_settings.PI_API_URL}/v2/me", timeout=5,
                      headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "alice"
    user_id = fake_peerid.add_user()
    tokens = fake_peerid.issue_tokens(user_id)
    call = requests.post(f"{piauth_settings.PEERID_URL}/api/v1/app/operations", timeout=5,
                         json={"operations": [{"op_name": "transfer"}]},
                         headers={"Authorization": f"Bearer {tokens['token']}",
                                  "ClientID": str(fake_peerid.client_id)})
    assert call.status_code == 200
    assert (fake_pi.call_count(), fake_peerid.call_count()) == (1, 1)


@pytest.mark.live
def test_live_fake_peerid_fixture_points_the_settings_at_it(live_fake_peerid, settings):
    from django_piauth.conf import piauth_settings

    assert live_fake_peerid.url.startswith("http://127.0.0.1:")
    assert settings.PIAUTH["PEERID_URL"] == live_fake_peerid.url == piauth_settings.PEERID_URL
    assert settings.PIAUTH["PI_API_URL"]  # other keys kept
    assert live_fake_peerid.client_id == piauth_settings.PEERID_CLIENT_ID
    assert live_fake_peerid.client_secret == piauth_settings.PEERID_CLIENT_SECRET
    live_fake_peerid.add_user("zoe", "pw")
    with requests.Session() as session:
        session.trust_env = False
        response = session.post(f"{live_fake_peerid.url}/api/v1/auth/token", timeout=5,
                                data={"login": "zoe", "password": "pw",
                                      "client_id": str(piauth_settings.PEERID_CLIENT_ID)})
    assert response.status_code == 200


@pytest.mark.live
def test_live_fakes_together(live_fake_pi, live_fake_peerid, fake_peerid):
    # A live fake and a responses-served one in the same test: loopback passes through.
    with requests.Session() as session:
        session.trust_env = False
        assert session.get(f"{live_fake_pi.url}/v2/me", timeout=5).status_code == 401
        assert session.get(f"{live_fake_peerid.url}/nothing", timeout=5).status_code == 405


# python -m django_piauth.testing ---------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.live
def test_command_line_serves_both_fakes():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "django_piauth.testing", "--port", "0",
         "--peerid-port", str(_free_port()), "--peerid-auto-approve"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        output = "".join(process.stdout.readline() for _ in range(4))
        assert re.match(r"Fake Pi Platform listening on http://127\.0\.0\.1:\d+\n", output)
        url = re.search(r"Fake PeerID listening on (http://127\.0\.0\.1:\d+)", output)[1]
        assert f"client id: {CLIENT}  client secret: {SECRET}" in output
        assert "demo user: alice  password: alice-demo" in output
        with requests.Session() as session:
            session.trust_env = False
            token = session.post(f"{url}/api/v1/auth/token", timeout=5,
                                 json={"login": "alice", "password": "alice-demo",
                                       "client_id": CLIENT})
            assert token.status_code == 200
            redirect = session.get(f"{url}/permissions", allow_redirects=False, timeout=5,
                                   params={"client_id": CLIENT, "state": "s",
                                           "redirect_uri": "http://127.0.0.1:1/cb"})
            assert redirect.status_code == 302
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "Fake PeerID stopped" in process.stdout.read()
        assert process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.live
def test_command_line_without_peerid_and_with_a_taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "django_piauth.testing", "--port", "0",
             "--peerid-port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--peerid-port 0" in result.stderr

    process = subprocess.Popen(
        [sys.executable, "-m", "django_piauth.testing", "--port", "0", "--peerid-port", "0"],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert "Fake Pi Platform listening" in process.stdout.readline()
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "PeerID" not in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
