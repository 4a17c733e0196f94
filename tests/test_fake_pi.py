"""The fake Pi Platform, through plain ``requests``, served both ways: ``responses`` and a
real loopback server (the ``live`` ones)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses

from django_piauth.testing import (
    DEFAULT_SCOPES,
    FakePiPlatform,
    LoopbackServer,
    serve_with_responses,
)

BASE = "https://api.minepi.example"
KEY = "fake-server-api-key"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Pi:
    """A fake, the URL it answers at, and a session that talks to it."""

    fake: FakePiPlatform
    url: str
    http: requests.Session

    def me(self, token: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        kwargs.setdefault("timeout", 5)
        return self.http.get(f"{self.url}/v2/me", headers=headers, **kwargs)

    def key(self, method: str, path: str, key: str = KEY, **kwargs) -> requests.Response:
        return self.http.request(method, f"{self.url}{path}", timeout=5,
                                 headers={"Authorization": f"Key {key}"}, **kwargs)


@pytest.fixture(params=["responses", pytest.param("live", marks=pytest.mark.live)])
def pi(request) -> Iterator[Pi]:
    fake = FakePiPlatform()
    with requests.Session() as session:
        session.trust_env = False  # no proxy between us and loopback
        if request.param == "responses":
            with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
                serve_with_responses(fake, rsps, BASE)
                yield Pi(fake, BASE, session)
        else:
            with LoopbackServer(fake) as server:
                yield Pi(fake, server.url, session)


# /v2/me ------------------------------------------------------------------------------

def test_me_official_shape(pi):
    token = pi.fake.issue_token(username="alice")
    response = pi.me(token)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["uid"] == pi.fake.uid_for("alice")
    assert body["username"] == "alice"
    assert body["credentials"]["scopes"] == list(DEFAULT_SCOPES)
    valid_until = body["credentials"]["valid_until"]
    assert isinstance(valid_until["timestamp"], int)
    assert abs(valid_until["timestamp"] - (time.time() + 3600)) < 5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", valid_until["iso8601"])
    assert datetime.fromisoformat(valid_until["iso8601"]).timestamp() == valid_until["timestamp"]


def test_me_user_shape_and_extra_fields(pi):
    token = pi.fake.issue_token(username="bob")
    pi.fake.me_shape = "user"
    assert pi.me(token).json() == {"user": {"uid": pi.fake.uid_for("bob"), "username": "bob"}}
    pi.fake.me_shape = "official"
    pi.fake.me_extra = {"roles": ["core_team"], "uid": "never-overrides"}
    body = pi.me(token).json()
    assert body["roles"] == ["core_team"]
    assert body["uid"] == pi.fake.uid_for("bob")
    with pytest.raises(ValueError):
        pi.fake.me_shape = "other"  # type: ignore[assignment]


def test_username_only_with_the_username_scope(pi):
    body = pi.me(pi.fake.issue_token(username="carol", scopes=("payments",))).json()
    assert "username" not in body
    assert body["credentials"]["scopes"] == ["payments"]
    pi.fake.me_shape = "user"
    token = pi.fake.issue_token(username="carol", scopes=())
    assert pi.me(token).json() == {"user": {"uid": pi.fake.uid_for("carol")}}


def test_tokens_are_fresh_and_opaque_while_uids_are_stable(pi):
    tokens = {pi.fake.issue_token(username="alice") for _ in range(5)}
    assert len(tokens) == 5
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32,}", token) for token in tokens)
    uids = {pi.me(token).json()["uid"] for token in tokens}
    assert uids == {pi.fake.uid_for("alice")}
    assert pi.fake.uid_for("alice") != pi.fake.uid_for("bob")
    assert re.fullmatch(r"[0-9a-f]{32}", pi.fake.uid_for("alice"))
    explicit = pi.fake.issue_token(uid="uid-42", username="dora")
    assert pi.me(explicit).json()["uid"] == "uid-42"
    assert pi.fake.uid_for("dora") == "uid-42"
    # Another token for a known uid keeps its username.
    assert pi.me(pi.fake.issue_token(uid="uid-42")).json()["username"] == "dora"


def test_rename_keeps_the_uid(pi):
    token = pi.fake.issue_token(username="alice")
    uid = pi.fake.uid_for("alice")
    pi.fake.rename(uid, "alice_new")
    assert pi.me(token).json()["username"] == "alice_new"
    assert pi.me(token).json()["uid"] == uid
    assert pi.fake.uid_for("alice_new") == uid
    with pytest.raises(KeyError):
        pi.fake.rename("nobody", "x")


@pytest.mark.parametrize("case", ["unknown", "revoked", "expired", "valid_until_past",
                                  "no_header", "key_scheme", "empty_bearer"])
def test_me_401(pi, case):
    token = pi.fake.issue_token(username="alice")
    if case == "unknown":
        response = pi.me("not-a-token")
    elif case == "revoked":
        pi.fake.revoke(token)
        response = pi.me(token)
    elif case == "expired":
        response = pi.me(pi.fake.issue_token(valid_for=-1))
    elif case == "valid_until_past":
        past = datetime.now(UTC) - timedelta(minutes=1)
        response = pi.me(pi.fake.issue_token(valid_until=past))
    elif case == "no_header":
        response = pi.me(None)
    elif case == "key_scheme":
        response = pi.http.get(f"{pi.url}/v2/me", headers={"Authorization": f"Key {token}"})
    else:
        response = pi.me("")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_expiry_follows_the_clock():
    now = [1_700_000_000.0]
    fake = FakePiPlatform(clock=lambda: now[0])
    token = fake.issue_token(valid_for=60)
    bearer = {"Authorization": f"Bearer {token}"}
    status, _headers, body = fake.handle("GET", "/v2/me", bearer, b"")
    assert status == 200
    assert json.loads(body)["credentials"]["valid_until"] == {
        "timestamp": 1_700_000_060, "iso8601": "2023-11-14T22:14:20Z"}
    now[0] += 60
    assert fake.handle("GET", "/v2/me", bearer, b"")[0] == 401


def test_deauthorize_kills_tokens_and_changes_the_uid(pi):
    token = pi.fake.issue_token(username="alice")
    old_uid = pi.fake.uid_for("alice")
    pi.fake.deauthorize(old_uid)
    assert pi.me(token).status_code == 401
    new = pi.me(pi.fake.issue_token(username="alice")).json()
    assert new["uid"] != old_uid
    assert new["username"] == "alice"


# Failure injection ----------------------------------------------------------------------

def test_fail_with_for_the_next_calls_only(pi):
    token = pi.fake.issue_token()
    pi.fake.fail_with(503, count=2)
    assert [pi.me(token).status_code for _ in range(3)] == [503, 503, 200]
    pi.fake.fail_with(500, body=b"boom", content_type="text/plain")
    response = pi.me(token)
    assert (response.status_code, response.content) == (500, b"boom")
    assert response.headers["Content-Type"] == "text/plain"
    pi.fake.fail_with(401)
    assert pi.me(token).status_code == 401
    assert pi.me(token).status_code == 200


def test_fail_until_cleared(pi):
    token = pi.fake.issue_token()
    pi.fake.fail_with(502, count=None)
    assert [pi.me(token).status_code for _ in range(3)] == [502, 502, 502]
    pi.fake.clear_failures()
    assert pi.me(token).status_code == 200


def test_failure_limited_to_a_path(pi):
    token = pi.fake.issue_token()
    pi.fake.fail_with(503, path="/v2/payments", count=None)
    assert pi.me(token).status_code == 200
    assert pi.key("GET", "/v2/payments/incomplete_server_payments").status_code == 503
    assert pi.key("GET", "/v2/payments/abc").status_code == 503


def test_garbage(pi):
    token = pi.fake.issue_token()
    pi.fake.garbage()
    response = pi.me(token)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert pi.me(token).json()["uid"]


def test_drop_connection(pi):
    token = pi.fake.issue_token()
    pi.fake.drop_connection()
    with pytest.raises(requests.ConnectionError):
        pi.me(token)
    assert pi.me(token).status_code == 200
    assert [call.status for call in pi.fake.calls] == [None, 200]


def test_delay_then_answer(pi):
    token = pi.fake.issue_token()
    pi.fake.delay(0.2, count=1)
    pi.fake.fail_with(503)
    started = time.monotonic()
    assert pi.me(token).status_code == 503
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    assert pi.me(token).status_code == 200
    assert time.monotonic() - started < 0.2


def test_delay_past_the_read_timeout_is_a_timeout(pi):
    token = pi.fake.issue_token()
    pi.fake.delay(0.5, count=1)
    with pytest.raises(requests.ReadTimeout):
        pi.me(token, timeout=(1, 0.1))
    assert pi.fake.call_count("/v2/me") == 1


def test_failures_never_hit_the_fake_sdk_route(pi):
    pi.fake.fail_with(503, count=None)
    response = pi.http.post(f"{pi.url}/_fake/authenticate", json={"username": "eve"})
    assert response.status_code == 200


def test_bad_injection_arguments():
    fake = FakePiPlatform()
    with pytest.raises(ValueError):
        fake.fail_with(503, count=0)
    with pytest.raises(ValueError):
        fake.fail_with(42)
    with pytest.raises(ValueError):
        fake.delay(-1)


# Calls --------------------------------------------------------------------------------

def test_calls_are_counted_and_hold_no_secret(pi):
    token = pi.fake.issue_token()
    pi.me(token)
    pi.me("wrong-token")
    pi.key("GET", "/v2/payments/incomplete_server_payments")
    pi.http.get(f"{pi.url}/v2/me?access_token={token}", headers={"Authorization": token})
    assert pi.fake.call_count("/v2/me") == 3
    assert pi.fake.call_count("/v2/me", method="get") == 3
    assert pi.fake.call_count() == 4
    assert [(c.method, c.path, c.auth_scheme, c.status) for c in pi.fake.calls] == [
        ("GET", "/v2/me", "Bearer", 200),
        ("GET", "/v2/me", "Bearer", 401),
        ("GET", "/v2/payments/incomplete_server_payments", "Key", 200),
        ("GET", "/v2/me", "other", 401),
    ]
    recorded = repr(pi.fake.calls) + repr(pi.fake)
    assert token not in recorded
    assert "wrong-token" not in recorded
    assert KEY not in recorded
    pi.fake.reset_calls()
    assert pi.fake.calls == []
    assert pi.fake.call_count("/v2/me") == 0


# The fake SDK route -------------------------------------------------------------------

def assert_cors_preflight(pi, route):
    """The browser's preflight for a POST from the demo page is allowed."""
    preflight = pi.http.options(f"{pi.url}{route}", headers={
        "Origin": "http://127.0.0.1:8000",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    })
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type"

def test_fake_authenticate_with_cors(pi):
    assert_cors_preflight(pi, "/_fake/authenticate")

    response = pi.http.post(f"{pi.url}/_fake/authenticate",
                            json={"username": "frank", "scopes": ["username"]},
                            headers={"Origin": "http://127.0.0.1:8000"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    auth = response.json()
    assert auth["user"] == {"uid": pi.fake.uid_for("frank"), "username": "frank"}
    me = pi.me(auth["accessToken"])
    assert me.json()["credentials"]["scopes"] == ["username"]
    assert "Access-Control-Allow-Origin" not in me.headers  # CORS on the fake route only


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"username": ""}',
                                  b'{"username": "x", "scopes": "username"}'])
def test_fake_authenticate_rejects_bad_input(pi, body):
    response = pi.http.post(f"{pi.url}/_fake/authenticate", data=body,
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == "*"


# The fake SDK's payment routes ---------------------------------------------------------

SDK_PAYMENT_ROUTES = ["/_fake/create_payment", "/_fake/sign_transaction",
                      "/_fake/incomplete_payment"]


def sdk(pi: Pi, route: str, **body) -> requests.Response:
    """A POST to a /_fake route, as the demo page's JavaScript makes it."""
    return pi.http.post(f"{pi.url}/_fake/{route}", json=body, timeout=5,
                        headers={"Origin": "http://127.0.0.1:8000"})


def test_fake_create_payment_sign_and_incomplete(pi):
    token = pi.fake.issue_token(username="alice")
    uid = pi.fake.uid_for("alice")
    assert sdk(pi, "incomplete_payment", accessToken=token).json() == {"payment": None}

    created = sdk(pi, "create_payment", accessToken=token, amount=1, memo="A sticker",
                  metadata={"item": "sticker"})
    assert created.status_code == 200
    assert created.headers["Access-Control-Allow-Origin"] == "*"
    identifier = created.json()["identifier"]
    assert set(created.json()) == {"identifier"}
    dto = pi.key("GET", f"/v2/payments/{identifier}").json()  # the server sees it
    assert (dto["user_uid"], dto["amount"], dto["memo"], dto["metadata"], dto["direction"]) == (
        uid, 1, "A sticker", {"item": "sticker"}, "user_to_app")
    assert not any(dto["status"].values())

    # Unfinished: what Pi.authenticate hands onIncompletePaymentFound; no second payment.
    found = sdk(pi, "incomplete_payment", accessToken=token)
    assert found.status_code == 200
    assert found.headers["Access-Control-Allow-Origin"] == "*"
    assert found.json()["payment"] == dto
    ongoing = sdk(pi, "create_payment", accessToken=token, amount=2)
    assert (ongoing.status_code, ongoing.json()["error"]) == (409, "ongoing_payment_found")
    assert ongoing.json()["payment"]["identifier"] == identifier
    assert ongoing.headers["Access-Control-Allow-Origin"] == "*"

    # The wallet signs only once the app's server approved the payment.
    early = sdk(pi, "sign_transaction", accessToken=token, paymentId=identifier)
    assert (early.status_code, early.json()["error"]) == (409, "not_approved")
    assert pi.fake.payment(identifier)["transaction"] is None
    pi.key("POST", f"/v2/payments/{identifier}/approve")
    signed = sdk(pi, "sign_transaction", accessToken=token, paymentId=identifier)
    assert signed.status_code == 200
    assert signed.headers["Access-Control-Allow-Origin"] == "*"
    txid = signed.json()["txid"]
    assert pi.fake.payment(identifier)["transaction"]["txid"] == txid
    assert pi.fake.payment(identifier)["status"]["transaction_verified"] is True
    again = sdk(pi, "sign_transaction", accessToken=token, paymentId=identifier)
    assert again.json() == {"txid": txid}
    assert sdk(pi, "incomplete_payment", accessToken=token).json()["payment"][
        "transaction"]["txid"] == txid

    completed = pi.key("POST", f"/v2/payments/{identifier}/complete", json={"txid": txid})
    assert completed.status_code == 200
    assert sdk(pi, "incomplete_payment", accessToken=token).json() == {"payment": None}
    done = sdk(pi, "sign_transaction", accessToken=token, paymentId=identifier)
    assert (done.status_code, done.json()["error"]) == (409, "already_completed")
    assert sdk(pi, "create_payment", accessToken=token, amount="0.5").status_code == 200


def test_fake_sign_transaction_only_for_the_tokens_own_payment(pi):
    alice = pi.fake.issue_token(username="alice")
    mallory = pi.fake.issue_token(username="mallory")
    identifier = sdk(pi, "create_payment", accessToken=alice, amount=1).json()["identifier"]
    pi.key("POST", f"/v2/payments/{identifier}/approve")
    foreign = sdk(pi, "sign_transaction", accessToken=mallory, paymentId=identifier)
    assert (foreign.status_code, foreign.json()["error"]) == (403, "not_yours")
    assert foreign.headers["Access-Control-Allow-Origin"] == "*"
    assert pi.fake.payment(identifier)["transaction"] is None
    assert sdk(pi, "incomplete_payment", accessToken=mallory).json() == {"payment": None}
    app_payment = pi.fake.create_app_payment(pi.fake.uid_for("alice"), 1)
    to_alice = sdk(pi, "sign_transaction", accessToken=alice, paymentId=app_payment)
    assert (to_alice.status_code, to_alice.json()["error"]) == (403, "not_yours")
    unknown = sdk(pi, "sign_transaction", accessToken=alice, paymentId="nope")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "payment_not_found")

    pi.key("POST", f"/v2/payments/{identifier}/cancel")
    cancelled = sdk(pi, "sign_transaction", accessToken=alice, paymentId=identifier)
    assert (cancelled.status_code, cancelled.json()["error"]) == (409, "cancelled_payment")
    assert pi.fake.payment(identifier)["transaction"] is None


@pytest.mark.parametrize("route", SDK_PAYMENT_ROUTES)
def test_fake_payment_routes_need_a_live_token_with_the_payments_scope(pi, route):
    revoked = pi.fake.issue_token(username="alice")
    pi.fake.revoke(revoked)
    expired = pi.fake.issue_token(username="alice", valid_for=-1)
    no_scope = pi.fake.issue_token(username="alice", scopes=["username"])
    live = pi.fake.issue_token(username="alice")
    identifier = pi.fake.create_user_payment(pi.fake.uid_for("alice"), 1)
    body = {"amount": 1, "paymentId": identifier}
    for token in (None, "", "forged", 42, revoked, expired, "x" * 600):
        response = pi.http.post(f"{pi.url}{route}", json={**body, "accessToken": token})
        assert (response.status_code, response.json()["error"]) == (401, "invalid_token")
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    response = pi.http.post(f"{pi.url}{route}", json={**body, "accessToken": no_scope})
    assert (response.status_code, response.json()["error"]) == (403, "missing_scope")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert pi.fake.payment(identifier)["transaction"] is None
    assert len(pi.fake._payments) == 1  # nothing made
    assert pi.http.post(f"{pi.url}{route}",
                        json={**body, "accessToken": live}).status_code in (200, 409)


@pytest.mark.parametrize("route", SDK_PAYMENT_ROUTES)
def test_fake_payment_routes_cors_and_methods(pi, route):
    assert_cors_preflight(pi, route)
    response = pi.http.get(f"{pi.url}{route}")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    for bad in (b"not json", b"[]", b"\xff"):
        response = pi.http.post(f"{pi.url}{route}", data=bad,
                                headers={"Content-Type": "application/json"})
        assert (response.status_code, response.json()["error"]) == (400, "bad_request")
        assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("body", [
    {}, {"amount": 0}, {"amount": -1}, {"amount": "abc"}, {"amount": True},
    {"amount": None}, {"amount": "1.00000001"}, {"amount": 1, "memo": 7},
    {"amount": 1, "memo": "m" * 1001}, {"amount": 1, "metadata": "sticker"},
    {"amount": 1, "metadata": ["item"]},
])
def test_fake_create_payment_rejects_bad_input(pi, body):
    token = pi.fake.issue_token(username="alice")
    response = sdk(pi, "create_payment", accessToken=token, **body)
    assert (response.status_code, response.json()["error"]) == (400, "bad_request")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert sdk(pi, "incomplete_payment", accessToken=token).json() == {"payment": None}


@pytest.mark.parametrize("payment_id", [None, "", 7, "../v2/me", "a/b", "x" * 129])
def test_fake_sign_transaction_rejects_bad_ids(pi, payment_id):
    token = pi.fake.issue_token(username="alice")
    response = sdk(pi, "sign_transaction", accessToken=token, paymentId=payment_id)
    assert (response.status_code, response.json()["error"]) == (400, "bad_request")


def test_failures_never_hit_the_fake_payment_routes(pi):
    token = pi.fake.issue_token(username="alice")
    pi.fake.fail_with(503, count=None)
    created = sdk(pi, "create_payment", accessToken=token, amount=1)
    assert created.status_code == 200
    assert sdk(pi, "incomplete_payment", accessToken=token).status_code == 200
    assert pi.key("GET", f"/v2/payments/{created.json()['identifier']}").status_code == 503


# Routes and the Server API Key ---------------------------------------------------------

def test_unknown_route_and_wrong_method(pi):
    assert pi.http.get(f"{pi.url}/v2/nothing").status_code == 404
    assert pi.http.get(f"{pi.url}/").status_code == 404
    response = pi.http.post(f"{pi.url}/v2/me")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert pi.key("GET", "/v2/payments/abc/approve").status_code == 405


@pytest.mark.parametrize("authorization", [None, "Key wrong", f"Bearer {KEY}", KEY, "Key "])
def test_key_routes_need_the_server_api_key(pi, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = pi.http.get(f"{pi.url}/v2/payments/incomplete_server_payments", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_set_server_api_key(pi):
    pi.fake.set_server_api_key("rotated")
    assert pi.fake.server_api_key == "rotated"
    assert pi.key("GET", "/v2/payments/incomplete_server_payments").status_code == 401
    assert pi.key("GET", "/v2/payments/incomplete_server_payments",
                  key="rotated").status_code == 200


def test_unknown_payment_is_404(pi):
    response = pi.key("GET", "/v2/payments/nope")
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "payment_not_found"
    assert body["error_message"]
    assert pi.key("POST", "/v2/payments/nope/approve").status_code == 404


def test_user_to_app_payment_lifecycle(pi):
    uid = pi.fake.uid_for("alice")
    identifier = pi.fake.create_user_payment(uid, Decimal("3.14"), "a cup", {"order": 7})
    dto = pi.key("GET", f"/v2/payments/{identifier}").json()
    assert set(dto) == {"identifier", "user_uid", "amount", "memo", "metadata", "from_address",
                        "to_address", "direction", "created_at", "network", "status",
                        "transaction"}
    assert dto["identifier"] == identifier
    assert dto["user_uid"] == uid
    assert dto["amount"] == 3.14
    assert json.loads(pi.key("GET", f"/v2/payments/{identifier}").content,
                      parse_float=Decimal)["amount"] == Decimal("3.14")
    assert (dto["memo"], dto["metadata"]) == ("a cup", {"order": 7})
    assert dto["direction"] == "user_to_app"
    assert dto["network"] == "Pi Testnet"
    assert dto["transaction"] is None
    assert not any(dto["status"].values())
    assert re.fullmatch(r"G[A-Z2-7]{55}", dto["from_address"])

    response = pi.key("POST", f"/v2/payments/{identifier}/complete", json={"txid": "t1"})
    assert (response.status_code, response.json()["error"]) == (400, "not_approved")

    approved = pi.key("POST", f"/v2/payments/{identifier}/approve").json()
    assert approved["status"]["developer_approved"] is True
    txid = pi.fake.submit_transaction(identifier)

    response = pi.key("POST", f"/v2/payments/{identifier}/complete", json={"txid": "other"})
    assert (response.status_code, response.json()["error"]) == (400, "txid_mismatch")
    assert response.json()["payment"]["identifier"] == identifier

    completed = pi.key("POST", f"/v2/payments/{identifier}/complete", json={"txid": txid})
    assert completed.status_code == 200
    assert completed.json()["status"]["developer_completed"] is True
    assert completed.json()["transaction"]["txid"] == txid
    assert completed.json()["transaction"]["verified"] is True

    again = pi.key("POST", f"/v2/payments/{identifier}/complete", json={"txid": txid})
    assert (again.status_code, again.json()["error"]) == (400, "already_completed")
    cancel = pi.key("POST", f"/v2/payments/{identifier}/cancel")
    assert (cancel.status_code, cancel.json()["error"]) == (400, "already_completed")
    assert pi.fake.payment(identifier)["status"]["developer_completed"] is True


def test_complete_without_a_prior_transaction_and_bad_bodies(pi):
    identifier = pi.fake.create_user_payment("uid-1", 1, "m")
    pi.key("POST", f"/v2/payments/{identifier}/approve")
    for bad in (b"not json", b"{}", b'{"txid": ""}'):
        response = pi.key("POST", f"/v2/payments/{identifier}/complete", data=bad)
        assert response.status_code == 400
    done = pi.key("POST", f"/v2/payments/{identifier}/complete", json={"txid": "abc"}).json()
    assert done["transaction"]["txid"] == "abc"
    assert done["amount"] == 1
    assert isinstance(done["amount"], int)


def test_cancel(pi):
    identifier = pi.fake.create_user_payment("uid-1", "2.5")
    cancelled = pi.key("POST", f"/v2/payments/{identifier}/cancel")
    assert cancelled.json()["status"]["cancelled"] is True
    approve = pi.key("POST", f"/v2/payments/{identifier}/approve")
    assert (approve.status_code, approve.json()["error"]) == (400, "cancelled_payment")
    other = pi.fake.create_user_payment("uid-1", "1")
    pi.fake.user_cancel(other)
    complete = pi.key("POST", f"/v2/payments/{other}/complete", json={"txid": "x"})
    assert complete.json()["error"] == "cancelled_payment"


def test_app_to_user_payments_and_incomplete_server_payments(pi):
    uid = pi.fake.uid_for("alice")
    listing = pi.key("GET", "/v2/payments/incomplete_server_payments")
    assert listing.json() == {"incomplete_server_payments": []}
    created = pi.key("POST", "/v2/payments",
                     json={"payment": {"amount": 0.5, "memo": "refund", "metadata": {},
                                       "uid": uid}})
    assert created.status_code == 200
    dto = created.json()
    assert (dto["direction"], dto["amount"], dto["status"]["developer_approved"]) == (
        "app_to_user", 0.5, True)
    pi.fake.create_user_payment(uid, 1)  # user-to-app: never listed
    listing = pi.key("GET", "/v2/payments/incomplete_server_payments").json()
    assert [p["identifier"] for p in listing["incomplete_server_payments"]] == [
        dto["identifier"]]

    ongoing = pi.key("POST", "/v2/payments",
                     json={"payment": {"amount": 1, "memo": "", "metadata": {}, "uid": uid}})
    assert (ongoing.status_code, ongoing.json()["error"]) == (400, "ongoing_payment_found")
    unknown = pi.key("POST", "/v2/payments",
                     json={"payment": {"amount": 1, "memo": "", "metadata": {}, "uid": "x"}})
    assert (unknown.status_code, unknown.json()["error"]) == (400, "user_not_found")
    bad = pi.key("POST", "/v2/payments", json={"payment": {"amount": -1, "uid": uid}})
    assert bad.status_code == 400
    approve = pi.key("POST", f"/v2/payments/{dto['identifier']}/approve")
    assert approve.status_code == 400

    unpaid = pi.key("POST", f"/v2/payments/{dto['identifier']}/complete", json={"txid": "tx"})
    assert (unpaid.status_code, unpaid.json()["error"]) == (400, "not_verified")  # no chain tx
    txid = pi.fake.submit_transaction(dto["identifier"])  # the chain pays it
    done = pi.key("POST", f"/v2/payments/{dto['identifier']}/complete", json={"txid": txid})
    assert done.status_code == 200 and done.json()["status"]["developer_completed"] is True
    listing = pi.key("GET", "/v2/payments/incomplete_server_payments").json()
    assert listing == {"incomplete_server_payments": []}


def test_bad_seed_amounts():
    fake = FakePiPlatform()
    for amount in (0, -1, "abc", True, None, float("nan")):
        with pytest.raises(ValueError):
            fake.create_user_payment("uid", amount)


# serve_with_responses details ------------------------------------------------------------

def test_responses_with_a_base_path_and_query_string():
    fake = FakePiPlatform()
    token = fake.issue_token()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        serve_with_responses(fake, rsps, "https://gateway.example/pi/")
        response = requests.get("https://gateway.example/pi/v2/me?x=1",
                                headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert response.status_code == 200
        with pytest.raises(requests.ConnectionError):  # not under the base URL
            requests.get("https://gateway.example/other", timeout=5)
    assert [call.path for call in fake.calls] == ["/v2/me"]


def test_importing_the_package_needs_no_responses():
    code = ("import sys; import django_piauth.testing, django_piauth.testing.pytest_plugin; "
            "sys.exit('responses' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False,
                            timeout=60)
    assert result.returncode == 0


# The fixtures ---------------------------------------------------------------------------

def test_fake_pi_fixture_answers_at_the_configured_url(fake_pi):
    from django_piauth.conf import piauth_settings

    assert fake_pi.url == piauth_settings.PI_API_URL.rstrip("/")
    token = fake_pi.issue_token(username="alice")
    response = requests.get(f"{piauth_settings.PI_API_URL}/v2/me", timeout=5,
                            headers={"Authorization": f"Bearer {token}"})
    assert response.json()["username"] == "alice"
    assert fake_pi.server_api_key == (piauth_settings.PI_SERVER_API_KEY or KEY)
    assert fake_pi.call_count("/v2/me") == 1
    with pytest.raises(requests.ConnectionError):  # nothing else leaves the process
        requests.get("https://example.com/", timeout=5)


@pytest.mark.live
def test_live_fake_pi_fixture_points_the_settings_at_it(live_fake_pi, settings):
    from django_piauth.conf import piauth_settings

    assert live_fake_pi.url.startswith("http://127.0.0.1:")
    assert settings.PIAUTH["PI_API_URL"] == live_fake_pi.url
    assert live_fake_pi.url == piauth_settings.PI_API_URL
    assert live_fake_pi.server_api_key == piauth_settings.PI_SERVER_API_KEY
    with requests.Session() as session:
        session.trust_env = False
        token = live_fake_pi.issue_token(username="zoe")
        response = session.get(f"{live_fake_pi.url}/v2/me", timeout=5,
                            headers={"Authorization": f"Bearer {token}"})
    assert response.json()["username"] == "zoe"


# LoopbackServer -------------------------------------------------------------------------

class Echo:
    """Any object with ``handle`` can be served."""

    def handle(self, method, path, headers, body, *, timeout=None):
        if path == "/boom":
            raise RuntimeError("boom")
        payload = {"method": method, "path": path, "body": body.decode(),
                   "header": headers.get("X-Test")}
        return 200, {"Content-Type": "application/json", "Content-Length": "1"}, \
            json.dumps(payload).encode()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "example.com",  # noqa: S104
                                  ""])
def test_loopback_server_refuses_other_hosts(host):
    with pytest.raises(ValueError, match="loopback"):
        LoopbackServer(Echo(), host)


@pytest.mark.live
def test_loopback_server_is_generic_http11_with_keep_alive():
    with LoopbackServer(Echo()) as server:
        assert server.running
        assert server.url == f"http://127.0.0.1:{server.port}"
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            sockets = set()
            for body in (b"one", b"two and more"):
                connection.request("POST", "/x?y=1", body=body, headers={"X-Test": "t"})
                sockets.add(id(connection.sock))
                response = connection.getresponse()
                assert response.version == 11
                data = response.read()
                assert response.getheader("Content-Length") == str(len(data))
                assert json.loads(data) == {"method": "POST", "path": "/x?y=1",
                                            "body": body.decode(), "header": "t"}
            assert len(sockets) == 1  # the same connection answered both
            connection.request("HEAD", "/h")
            head = connection.getresponse()
            assert head.read() == b""
            assert int(head.getheader("Content-Length")) > 0
        finally:
            connection.close()


@pytest.mark.live
def test_loopback_server_errors_and_limits(caplog):
    with LoopbackServer(Echo(), max_body_bytes=10) as server, requests.Session() as session:
        session.trust_env = False
        with caplog.at_level("ERROR", logger="django_piauth.testing"):
            response = session.get(f"{server.url}/boom", timeout=5)
        assert response.status_code == 500
        assert "the fake upstream failed" in caplog.text
        assert session.post(f"{server.url}/big", data=b"x" * 11, timeout=5).status_code == 413
        assert session.post(f"{server.url}/ok", data=b"x" * 10, timeout=5).status_code == 200


@pytest.mark.live
def test_loopback_server_is_quiet_and_stops(capfd):
    server = LoopbackServer(FakePiPlatform()).start()
    port = server.port
    with requests.Session() as session:
        session.trust_env = False
        assert session.get(f"{server.url}/v2/me", timeout=5).status_code == 401
        server.stop()
        server.stop()  # idempotent
    assert not server.running
    assert capfd.readouterr().err == ""
    with pytest.raises(RuntimeError):
        _ = server.port
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()
    with server:  # it can start again
        assert server.running


@pytest.mark.live
def test_loopback_server_ends_idle_connections():
    with LoopbackServer(Echo(), idle_timeout=0.2) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            connection.request("GET", "/a")
            connection.getresponse().read()
            time.sleep(0.5)
            assert connection.sock.recv(1) == b""  # the server closed it
        finally:
            connection.close()


@pytest.mark.live
def test_loopback_server_on_ipv6_loopback():
    try:
        server = LoopbackServer(Echo(), "::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert server.url.startswith("http://[::1]:")
        with requests.Session() as session:
            session.trust_env = False
            assert session.get(f"{server.url}/v6", timeout=5).json()["path"] == "/v6"
    finally:
        server.stop()


# python -m django_piauth.testing ---------------------------------------------------------

@pytest.mark.live
def test_command_line_serves_until_sigterm():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "django_piauth.testing", "--port", "0", "--latency-ms", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        with requests.Session() as session:
            session.trust_env = False
            auth = session.post(f"{match[0]}/_fake/authenticate", json={"username": "amy"},
                             timeout=5).json()
            me = session.get(f"{match[0]}/v2/me", timeout=5,
                          headers={"Authorization": f"Bearer {auth['accessToken']}"})
        assert me.json()["username"] == "amy"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_command_line_refuses_other_hosts():
    result = subprocess.run(
        [sys.executable, "-m", "django_piauth.testing", "--host", "0.0.0.0"],  # noqa: S104
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "loopback" in result.stderr


def test_uid_seed_gives_the_same_uids_in_every_run_until_deauthorized():
    from django_piauth.testing import FakePiPlatform

    first, second = FakePiPlatform(uid_seed="s"), FakePiPlatform(uid_seed="s")
    assert first.uid_for("alice") == second.uid_for("alice")
    assert first.uid_for("alice") != first.uid_for("bob")
    assert FakePiPlatform().uid_for("alice") != FakePiPlatform().uid_for("alice")
    old = first.uid_for("alice")
    first.deauthorize(old)
    assert first.uid_for("alice") != old
