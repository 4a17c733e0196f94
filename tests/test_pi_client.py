"""The Pi Platform client against ``responses``: shapes, the three outcomes, limits."""

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import responses
from django.core.exceptions import ImproperlyConfigured

from django_piauth.exceptions import (
    InvalidToken,
    MissingScope,
    OngoingPaymentFound,
    PaymentAlreadyApproved,
    PaymentAlreadyCompleted,
    PaymentCancelled,
    PaymentError,
    PaymentNotFound,
    PiUserNotFound,
    TransactionNotVerified,
    TxidMismatch,
    UpstreamError,
    UpstreamUnavailable,
)
from django_piauth.providers.payment_dto import PaymentTransaction
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


def payment_dto(identifier="abc-1", **changes):
    """A PaymentDTO body as the platform sends it."""
    body = {
        "identifier": identifier, "user_uid": "uid-1", "amount": 3.1415926, "memo": "a hat",
        "metadata": {"order": 7}, "from_address": "GFROM", "to_address": "GTO",
        "direction": "user_to_app", "created_at": "2026-12-01T10:00:00.123Z",
        "network": "Pi Testnet",
        "status": {"developer_approved": True, "transaction_verified": True,
                   "developer_completed": False, "cancelled": False, "user_cancelled": False},
        "transaction": {"txid": "tx-9", "verified": True, "_link": "https://x/tx-9"},
    }
    body.update(changes)
    return body


def test_server_api_key_rides_in_the_key_header(client, mocked):
    mocked.get(f"{BASE}/v2/payments/abc-1", json=payment_dto())
    assert client.get_payment("abc-1").identifier == "abc-1"
    assert mocked.calls[0].request.headers["Authorization"] == f"Key {KEY}"


def test_a_payment_is_typed_with_an_exact_decimal_amount(client, mocked):
    mocked.get(f"{BASE}/v2/payments/abc-1", json=payment_dto())
    payment = client.get_payment("abc-1")
    assert payment.amount == Decimal("3.1415926")
    assert isinstance(payment.amount, Decimal)
    assert payment.status.developer_approved and not payment.status.any_cancelled
    assert payment.transaction == PaymentTransaction("tx-9", True, "https://x/tx-9")
    assert payment.txid == "tx-9"
    assert payment.created_at == datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert payment.metadata == {"order": 7}


@pytest.mark.parametrize("changes", [
    {"amount": "lots"}, {"amount": -1}, {"amount": 1e30}, {"amount": "1e23"},
    {"amount": "NaN"}, {"amount": "Infinity"}, {"amount": 0.12345678}, {"amount": True},
    {"amount": None}, {"identifier": None}, {"user_uid": 7}, {"direction": "sideways"},
    {"status": None}, {"status": {"developer_approved": "yes"}}, {"transaction": "tx"},
    {"transaction": {"verified": True}}, {"memo": ["x"]},
])
def test_a_payment_of_the_wrong_shape_is_an_outage(client, mocked, changes):
    mocked.get(f"{BASE}/v2/payments/abc-1", json=payment_dto(**changes))
    with pytest.raises(UpstreamUnavailable):
        client.get_payment("abc-1")


def test_complete_payment_posts_the_txid(client, mocked):
    mocked.post(f"{BASE}/v2/payments/p1/complete", json=payment_dto("p1"))
    client.complete_payment("p1", "tx-9")
    assert json.loads(mocked.calls[0].request.body) == {"txid": "tx-9"}


@pytest.mark.parametrize(("code", "error_class"), [
    ("payment_not_found", PaymentNotFound),
    ("already_approved", PaymentAlreadyApproved),
    ("already_completed", PaymentAlreadyCompleted),
    ("cancelled_payment", PaymentCancelled),
    ("txid_mismatch", TxidMismatch),
    ("not_verified", TransactionNotVerified),
    ("ongoing_payment_found", OngoingPaymentFound),
    ("user_not_found", PiUserNotFound),
    ("missing_scope", MissingScope),
    ("something_new", PaymentError),
])
def test_documented_payment_errors_are_typed(client, mocked, code, error_class):
    mocked.post(f"{BASE}/v2/payments/p1/complete", status=400,
                json={"error": code, "error_message": "no", "payment": payment_dto("p1")})
    with pytest.raises(error_class) as info:
        client.complete_payment("p1", "tx-9")
    assert type(info.value) is error_class
    assert info.value.code == code
    assert info.value.payment is not None and info.value.payment.identifier == "p1"
    assert KEY not in str(info.value)


def test_an_error_whose_payment_is_garbage_still_raises_its_type(client, mocked):
    mocked.post(f"{BASE}/v2/payments/p1/approve", status=400,
                json={"error": "already_approved", "payment": {"identifier": 5}})
    with pytest.raises(PaymentAlreadyApproved) as info:
        client.approve_payment("p1")
    assert info.value.payment is None


def test_incomplete_server_payments_are_typed(client, mocked):
    mocked.get(f"{BASE}/v2/payments/incomplete_server_payments",
               json={"incomplete_server_payments": [payment_dto("a"), payment_dto("b")]})
    assert [p.identifier for p in client.incomplete_server_payments()] == ["a", "b"]


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


@pytest.mark.parametrize("payment_id", ["../me", "a/b", "", "x" * 129, "é", "a b", "a%2F"])
def test_payment_id_cannot_smuggle_a_path(client, mocked, payment_id):
    with pytest.raises(ValueError, match="payment id"):
        client.get_payment(payment_id)
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


def test_the_fake_platforms_payments_read_as_typed_payments():
    from django_piauth.providers.payment_dto import parse_payment
    from django_piauth.testing import FakePiPlatform

    fake = FakePiPlatform()
    identifier = fake.create_user_payment(fake.uid_for("alice"), "0.1234567", memo="tea")
    txid = fake.submit_transaction(identifier)
    payment = parse_payment(fake.payment(identifier))
    assert (payment.amount, payment.memo, payment.txid) == (Decimal("0.1234567"), "tea", txid)
    assert payment.direction == "user_to_app" and payment.status.transaction_verified


def test_an_error_of_another_route_stays_a_plain_upstream_error(client, mocked):
    mocked.get(f"{BASE}/v2/other", status=400, json={"error": "odd", "error_message": "no"})
    with pytest.raises(UpstreamError) as info:
        client.server_call("GET", "/v2/other")
    assert type(info.value) is UpstreamError
    assert (info.value.code, info.value.status) == ("odd", 400)


def test_a_long_memo_is_kept_whole(client, mocked):
    mocked.get(f"{BASE}/v2/payments/abc-1", json=payment_dto(memo="m" * 2500))
    assert client.get_payment("abc-1").memo == "m" * 2500
