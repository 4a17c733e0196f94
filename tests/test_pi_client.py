"""The Pi Platform client against ``responses``: shapes, the three outcomes, limits."""

import json
import logging
from datetime import UTC, datetime

import pytest
import requests
import responses
from django.core.exceptions import ImproperlyConfigured

from django_piauth.exceptions import InvalidToken, UpstreamError, UpstreamUnavailable
from django_piauth.providers.pi import PiIdentity, PiPlatformClient

BASE = "https://api.minepi.example"
ME = f"{BASE}/v2/me"
KEY = "srv-key-abcdefghijklmnop"


@pytest.fixture
def client():
    return PiPlatformClient(BASE, server_api_key=KEY, timeout=(1.5, 2.5), max_response_bytes=4096)


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


OFFICIAL = {
    "uid": "uid-1",
    "username": "alice",
    "credentials": {
        "scopes": ["username", "payments"],
        "valid_until": {"timestamp": 1767225600, "iso8601": "2026-01-01T00:00:00Z"},
    },
    "roles": ["core_team"],
}


def test_official_shape(client, mocked):
    mocked.get(ME, json=OFFICIAL)
    identity = client.me("tok")
    assert identity == PiIdentity(
        uid="uid-1",
        username="alice",
        scopes=("username", "payments"),
        valid_until=datetime(2026, 1, 1, tzinfo=UTC),
    )
    request = mocked.calls[0].request
    assert request.headers["Authorization"] == "Bearer tok"


def test_wiki_shape_with_user_object(client, mocked):
    mocked.get(ME, json={"user": {"uid": "uid-2", "username": "bob"}})
    identity = client.me("tok")
    assert (identity.uid, identity.username, identity.scopes, identity.valid_until) == (
        "uid-2", "bob", (), None
    )


def test_epoch_seconds_used_when_no_iso(client, mocked):
    mocked.get(ME, json={"uid": "u", "credentials": {"valid_until": {"timestamp": 1767225600}}})
    assert client.me("tok").valid_until == datetime(2026, 1, 1, tzinfo=UTC)


def test_username_absent_without_the_username_scope(client, mocked):
    mocked.get(ME, json={"uid": "u", "credentials": {"scopes": ["payments"]}})
    assert client.me("tok").username is None


def test_401_is_invalid_token(client, mocked):
    mocked.get(ME, status=401, body="")
    with pytest.raises(InvalidToken):
        client.me("tok")


@pytest.mark.parametrize("status", [500, 502, 503, 403, 404, 429, 302, 204])
def test_any_other_status_is_unavailable_never_invalid(client, mocked, status):
    mocked.get(ME, status=status, json={"uid": "u"})
    with pytest.raises(UpstreamUnavailable) as info:
        client.me("tok")
    assert not isinstance(info.value, InvalidToken)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>oops</html>",
        b"[]",
        b'{"username": "no-uid"}',
        b'{"uid": 42}',
        b'{"uid": ""}',
        b'{"user": {"uid": null}}',
        b'"uid"',
        b"\xff\xfe",
    ],
)
def test_bodies_not_of_the_documented_shape_are_unavailable(client, mocked, body):
    mocked.get(ME, body=body, content_type="application/json")
    with pytest.raises(UpstreamUnavailable):
        client.me("tok")


def test_timeout_and_connection_errors_are_unavailable(client, mocked):
    mocked.get(ME, body=requests.ConnectTimeout("slow"))
    with pytest.raises(UpstreamUnavailable, match="in time"):
        client.me("tok")
    mocked.get(ME, body=requests.ConnectionError("refused"))
    with pytest.raises(UpstreamUnavailable, match="could not be reached"):
        client.me("tok")


def test_every_call_carries_the_configured_timeout(client):
    with responses.RequestsMock() as rsps:
        rsps.get(ME, json=OFFICIAL)
        client.me("tok")
        assert rsps.calls[0].request.req_kwargs["timeout"] == (1.5, 2.5)


def test_oversized_answer_is_refused(client, mocked):
    mocked.get(ME, body=json.dumps({"uid": "u", "pad": "x" * 5000}))
    with pytest.raises(UpstreamUnavailable, match="more than 4096 bytes"):
        client.me("tok")


def test_oversized_declared_length_is_refused(client, mocked):
    mocked.get(ME, body=b"{}", headers={"Content-Length": "999999"},
               auto_calculate_content_length=False)
    with pytest.raises(UpstreamUnavailable, match="more than"):
        client.me("tok")


def test_server_api_key_rides_in_the_key_header(client, mocked):
    mocked.get(f"{BASE}/v2/payments/abc-1", json={"identifier": "abc-1"})
    assert client.get_payment("abc-1") == {"identifier": "abc-1"}
    assert mocked.calls[0].request.headers["Authorization"] == f"Key {KEY}"


def test_complete_payment_posts_the_txid(client, mocked):
    mocked.post(f"{BASE}/v2/payments/p1/complete", json={"identifier": "p1"})
    client.complete_payment("p1", "tx-9")
    assert json.loads(mocked.calls[0].request.body) == {"txid": "tx-9"}


def test_documented_error_body_is_an_upstream_error(client, mocked):
    mocked.get(
        f"{BASE}/v2/payments/nope",
        status=404,
        json={"error": "payment_not_found", "error_message": "No payment"},
    )
    with pytest.raises(UpstreamError) as info:
        client.get_payment("nope")
    assert info.value.code == "payment_not_found"
    assert info.value.status == 404
    assert KEY not in str(info.value)


def test_payment_id_cannot_smuggle_a_path(client, mocked):
    with pytest.raises(ValueError, match="payment id"):
        client.get_payment("../me")
    assert len(mocked.calls) == 0


def test_server_calls_without_a_key_say_which_setting_is_missing(mocked):
    client = PiPlatformClient(BASE)
    with pytest.raises(ImproperlyConfigured, match="PI_SERVER_API_KEY"):
        client.incomplete_server_payments()
    assert len(mocked.calls) == 0


def test_the_key_never_shows_in_repr_or_errors_or_logs(client, mocked, caplog):
    caplog.set_level(logging.DEBUG)
    mocked.get(f"{BASE}/v2/payments/x", status=500, body="boom")
    mocked.get(f"{BASE}/v2/payments/y", body=requests.ConnectionError(f"refused {KEY}"[:8]))
    assert KEY not in repr(client)
    for payment_id in ("x", "y"):
        with pytest.raises(UpstreamUnavailable) as info:
            client.get_payment(payment_id)
        assert KEY not in str(info.value)
    assert KEY not in caplog.text


@pytest.fixture
def environment(monkeypatch):
    """Sets proxy and CA variables for the next session the client builds."""
    from django_piauth.providers import http

    for name in list(http.os.environ):
        if name.lower().endswith(("_proxy", "_ca_bundle")):
            monkeypatch.delenv(name)
    monkeypatch.setattr(http, "_session", None)
    yield lambda **variables: [monkeypatch.setenv(k, v) for k, v in variables.items()]
    http._session = None  # the next test builds its own


@pytest.mark.parametrize(("variables", "proxies", "verify"), [
    ({}, {}, True),
    ({"HTTPS_PROXY": "http://proxy.internal:3128"},
     {"https": "http://proxy.internal:3128"}, True),
    ({"HTTPS_PROXY": "http://proxy.internal:3128", "NO_PROXY": "api.minepi.example"}, {},
     True),
    ({"REQUESTS_CA_BUNDLE": "/etc/ssl/custom.pem"}, {}, "/etc/ssl/custom.pem"),
    ({"CURL_CA_BUNDLE": "/etc/ssl/curl.pem"}, {}, "/etc/ssl/curl.pem"),
])
def test_proxy_and_ca_settings_from_the_environment_are_honoured(client, environment,
                                                                 variables, proxies, verify):
    environment(**variables)
    with responses.RequestsMock() as rsps:
        rsps.get(ME, json=OFFICIAL)
        client.me("tok")
        sent = rsps.calls[0].request.req_kwargs
    assert {k: v for k, v in sent["proxies"].items() if k != "no"} == proxies
    assert sent["verify"] == verify


def test_no_cookie_travels_from_one_call_to_the_next(client, mocked):
    mocked.get(ME, json=OFFICIAL, headers={"Set-Cookie": "__cf_bm=alice; Path=/"})
    client.me("alice-token")
    client.me("bob-token")
    assert "Cookie" not in mocked.calls[1].request.headers


def test_a_netrc_file_never_replaces_our_authorization(client, mocked, monkeypatch, tmp_path,
                                                       environment):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine api.minepi.example login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    environment(HTTPS_PROXY="http://proxy.internal:3128")  # requests reads ~/.netrc then
    mocked.get(ME, json=OFFICIAL)
    client.me("tok")
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer tok"
