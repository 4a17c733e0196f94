"""The PeerID client against ``responses``: body parameters, the outcomes, the app check."""

import json
from datetime import UTC, datetime

import pytest
import requests
import responses
from django.core.exceptions import ImproperlyConfigured

from django_piauth.exceptions import UpstreamError, UpstreamUnavailable
from django_piauth.providers.peerid import (
    AccessTokenRejected,
    InvalidCredentials,
    PeerIDClient,
    RefreshTokenDead,
    WrongApp,
)

BASE = "https://peerid.example"
SECRET = "client-secret-0123456789"


def token_body(app_id=42, user_id=7, **extra):
    result = {"expires": "2027-02-21T10:00:00.000Z", "app_id": app_id, "scope": [1, 2],
              "token": "a" * 124, "refresh_token": "r" * 124, "user_id": user_id, "id": 3}
    result.update(extra)
    return {"result": result, "status": 200}


@pytest.fixture
def client():
    return PeerIDClient(BASE, client_id=42, client_secret=SECRET)


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def sent(mocked, index=0):
    request = mocked.calls[index].request
    return json.loads(request.body), request


def test_password_grant_sends_parameters_in_the_body(client, mocked):
    mocked.post(f"{BASE}/api/v1/auth/token", json=token_body())
    tokens = client.password_grant("alice", password="pw")
    body, request = sent(mocked)
    assert body == {"login": "alice", "password": "pw", "client_id": 42}
    assert "?" not in request.url
    assert tokens.user_id == 7 and tokens.app_id == 42 and tokens.scope == (1, 2)
    assert tokens.expires_at == datetime(2027, 2, 21, 10, tzinfo=UTC)
    assert "a" * 124 not in repr(tokens)


def test_mobile_sign_in(client, mocked):
    mocked.post(f"{BASE}/api/v1/auth/token", json=token_body())
    client.password_grant("alice", mobile="+15550100")
    assert sent(mocked)[0] == {"login": "alice", "mobile": "+15550100", "client_id": 42}


def test_password_grant_needs_a_password_or_mobile(client):
    with pytest.raises(ValueError, match="password or a mobile"):
        client.password_grant("alice")


def test_400_on_sign_in_is_wrong_credentials(client, mocked):
    mocked.post(f"{BASE}/api/v1/auth/token", status=400,
                json={"error": {"password": "Invalid password"}, "status": 400})
    with pytest.raises(InvalidCredentials, match="Invalid password"):
        client.password_grant("alice", password="nope")


def test_token_for_another_app_is_refused(client, mocked):
    mocked.post(f"{BASE}/api/v1/auth/token", json=token_body(app_id=99))
    with pytest.raises(WrongApp):
        client.password_grant("alice", password="pw")


def test_exchange_sends_the_secret_in_the_body(client, mocked):
    mocked.post(f"{BASE}/api/v1/auth/exchange", json=token_body())
    client.exchange_code("the-code")
    assert sent(mocked)[0] == {"code": "the-code", "client_id": 42, "client_secret": SECRET}


def test_refresh_and_its_dead_token(client, mocked):
    mocked.post(f"{BASE}/api/v1/auth/refreshtoken", json=token_body())
    client.refresh("r" * 124)
    assert sent(mocked)[0] == {"refresh_token": "r" * 124, "client_id": 42,
                               "client_secret": SECRET}
    mocked.post(f"{BASE}/api/v1/auth/refreshtoken", status=400,
                json={"error": "Invalid refresh token", "status": 400})
    with pytest.raises(RefreshTokenDead):
        client.refresh("r" * 124)


def test_code_flow_and_refresh_need_the_secret(mocked):
    client = PeerIDClient(BASE, client_id=42)
    with pytest.raises(ImproperlyConfigured, match="PEERID_CLIENT_SECRET"):
        client.refresh("r")
    assert len(mocked.calls) == 0


def test_token_calls_carry_bearer_and_client_id(client, mocked):
    mocked.post(f"{BASE}/api/v1/app/operations", json={"result": [{"id": 1}], "status": 200})
    assert client.operations("a" * 124, [{"op_name": "transfer"}]) == [{"id": 1}]
    body, request = sent(mocked)
    assert request.headers["Authorization"] == f"Bearer {'a' * 124}"
    assert request.headers["ClientID"] == "42"
    assert body == {"operations": [{"op_name": "transfer"}]}


def test_401_on_a_token_call_is_a_rejected_access_token(client, mocked):
    mocked.post(f"{BASE}/api/v1/app/operations", status=401,
                json={"error": "Access Token invalid or expired", "status": 401})
    with pytest.raises(AccessTokenRejected):
        client.operations("a", [])


def test_other_4xx_on_a_token_call_is_an_upstream_error(client, mocked):
    mocked.post(f"{BASE}/api/v1/app/broadcast", status=400,
                json={"error": {"trx": "bad"}, "status": 400})
    with pytest.raises(UpstreamError) as info:
        client.broadcast("a", {"trx": {}})
    assert info.value.status == 400


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500, "json": {"error": "server side error", "status": 500}},
        {"status": 200, "body": "<html>"},
        {"status": 200, "json": {"status": 200}},
        {"status": 200, "json": {"result": {"token": "a", "refresh_token": "r"}}},
        {"status": 200, "json": token_body(expires="next tuesday")},
        {"status": 404, "body": ""},
        {"body": requests.ConnectionError("refused")},
    ],
)
def test_outages_and_garbage_are_unavailable(client, mocked, answer):
    mocked.post(f"{BASE}/api/v1/auth/token", **answer)
    with pytest.raises(UpstreamUnavailable):
        client.password_grant("alice", password="pw")


def test_authorize_url(client):
    assert client.authorize_url("https://site.example/cb", "st4te") == (
        f"{BASE}/permissions?client_id=42&redirect_uri=https%3A%2F%2Fsite.example%2Fcb"
        "&state=st4te"
    )


def test_the_secret_stays_out_of_repr_and_errors(client, mocked):
    mocked.post(f"{BASE}/api/v1/auth/exchange", status=503, body="")
    with pytest.raises(UpstreamUnavailable) as info:
        client.exchange_code("c")
    assert SECRET not in str(info.value) and SECRET not in repr(client)
