"""Property tests (issue 15, point 3) for the answers of the upstreams we only talk to
over HTTP: the SAFE Launcher's, Horizon's, PeerID's errors, and the sign-in bodies. Each
example is a whole HTTP answer (any status, any body, JSON or not) served through
``responses``: the client returns the documented result or raises the documented error,
never another exception."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import responses
from django.test import RequestFactory
from hypothesis import given, settings
from hypothesis import strategies as st

from django_piauth.exceptions import (
    InvalidCredentials,
    SafeAuthorizationDenied,
    UpstreamError,
    UpstreamUnavailable,
    WrongApp,
)
from django_piauth.providers.horizon import HorizonAccount, HorizonClient, HorizonRejected
from django_piauth.providers.peerid import PeerIDClient, PeerIDTokens
from django_piauth.providers.safe import SafeApp, SafeAuthorization, SafeLauncherClient
from django_piauth.request_data import BadRequestBody, request_data
from tests.counts import counted
from tests.test_properties import json_values, near

EXAMPLES = settings(max_examples=300, deadline=None)
STATUSES = st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 409, 429, 500,
                            502, 503])


@st.composite
def answers(draw: st.DrawFn, valid: dict[str, Any]) -> tuple[int, bytes]:
    """(status, body): random or near-valid JSON, or bytes that are not JSON at all."""
    status = draw(STATUSES)
    kind = draw(st.sampled_from(["near", "near", "json", "bytes"]))
    if kind == "bytes":
        return status, draw(st.binary(max_size=64))
    body = draw(near(valid)) if kind == "near" else draw(json_values)
    return status, json.dumps(body).encode()


def served(method: str, url: str, status: int, body: bytes) -> responses.RequestsMock:
    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    mock.add(method, url, status=status, body=body, content_type="application/json")
    return mock


SAFE = "http://127.0.0.1:41805"
SAFE_AUTH = {"token": "a" * 40, "permissions": ["SAFE_DRIVE_ACCESS"]}
APP = SafeApp(name="Shop", id="com.example.shop", version="1.0", vendor="Example")


@EXAMPLES
@given(answers(SAFE_AUTH))
def test_safe_authorization_answers(answer):
    status, body = answer
    client = SafeLauncherClient(SAFE, authorize_timeout=1.0)
    with served("POST", f"{SAFE}/auth", status, body):
        try:
            granted = client.authorize(APP, ["SAFE_DRIVE_ACCESS"])
        except SafeAuthorizationDenied:
            assert status == 401
            counted("property examples")
            return
        except UpstreamError as refused:
            assert refused.status == status and 400 <= status < 500 and status != 401
            counted("property examples")
            return
        except UpstreamUnavailable:
            assert status != 401
            counted("property examples")
            return
    assert status == 200 and isinstance(granted, SafeAuthorization)
    assert granted.token and all(isinstance(p, str) for p in granted.permissions)
    counted("property examples")


@EXAMPLES
@given(answers({"ok": True}))
def test_safe_check_answers(answer):
    status, body = answer
    client = SafeLauncherClient(SAFE)
    with served("GET", f"{SAFE}/auth", status, body):
        try:
            accepted = client.check("a" * 40)
        except UpstreamError as refused:
            assert 400 <= refused.status < 500 and refused.status != 401
            counted("property examples")
            return
        except UpstreamUnavailable:
            counted("property examples")
            return
    assert accepted is (status == 200) and status in (200, 401)
    counted("property examples")


HORIZON = "http://127.0.0.1:41806"
ADDRESS = "GBW7QS2DSS7HSQOVEVNLSCCWDMEWQDLBFDLPQRO7ZPASUDYK3B53CKS4"
TX = "ab" * 32
ACCOUNT = {"id": ADDRESS, "sequence": "123456",
           "balances": [{"asset_type": "native", "balance": "10.0000000"}]}
TRANSACTION = {"hash": TX, "successful": True, "ledger": 7, "memo": "pay-1"}
REFUSAL = {"extras": {"result_codes": {"transaction": "tx_failed",
                                       "operations": ["op_no_destination"]}}}


@EXAMPLES
@given(answers(ACCOUNT))
def test_horizon_account_answers(answer):
    status, body = answer
    client = HorizonClient(HORIZON)
    with served("GET", f"{HORIZON}/accounts/{ADDRESS}", status, body):
        try:
            account = client.account(ADDRESS)
        except UpstreamUnavailable:
            counted("property examples")
            return
    if account is not None:
        assert isinstance(account, HorizonAccount) and account.sequence >= 0
        assert isinstance(account.balance, Decimal) and account.balance.is_finite()
    else:
        assert status == 404
    counted("property examples")


@EXAMPLES
@given(answers(TRANSACTION) | answers(REFUSAL))
def test_horizon_submission_answers(answer):
    status, body = answer
    client = HorizonClient(HORIZON)
    with served("POST", f"{HORIZON}/transactions", status, body):
        try:
            landed = client.submit("AAAA", TX)
        except HorizonRejected as refused:
            assert status == 400 and isinstance(refused.transaction_code, str)
            counted("property examples")
            return
        except UpstreamUnavailable:
            counted("property examples")
            return
    assert status == 200 and landed.hash == TX and isinstance(landed.successful, bool)
    counted("property examples")


@EXAMPLES
@given(answers(TRANSACTION), st.sampled_from(["transaction", "fee"]))
def test_horizon_lookup_answers(answer, what):
    status, body = answer
    client = HorizonClient(HORIZON)
    path = f"/transactions/{TX}" if what == "transaction" else "/fee_stats"
    with served("GET", f"{HORIZON}{path}", status, body):
        try:
            found = client.transaction(TX) if what == "transaction" else client.base_fee()
        except UpstreamUnavailable:
            counted("property examples")
            return
    if what == "fee":
        assert isinstance(found, int) and 0 < found < 10**9
    elif found is not None:
        assert found.hash == TX
    counted("property examples")


PEERID = "http://127.0.0.1:41807"
TOKENS = {"result": {"token": "t", "refresh_token": "r", "user_id": 7, "app_id": 42,
                     "expires": "2030-01-01T00:00:00Z"}}
PEERID_ERROR = {"error": "Invalid credentials", "message": "wrong password"}


@EXAMPLES
@given(answers(TOKENS) | answers(PEERID_ERROR))
def test_peerid_sign_in_answers_and_errors(answer):
    status, body = answer
    client = PeerIDClient(PEERID, client_id=42, client_secret="s")
    with served("POST", f"{PEERID}/api/v1/auth/token", status, body):
        try:
            tokens = client.password_grant("alice", password="pw")
        except InvalidCredentials as refused:
            assert status in (400, 401)
            assert "pw" not in str(refused)
            counted("property examples")
            return
        except (UpstreamUnavailable, WrongApp):
            counted("property examples")
            return
    assert status == 200 and isinstance(tokens, PeerIDTokens)
    counted("property examples")


SIGN_IN = {"accessToken": "a-token", "next": "/home/"}


@EXAMPLES
@given(st.sampled_from(["application/json", "application/vnd.api+json", "text/plain",
                        "application/x-www-form-urlencoded", "multipart/form-data", ""]),
       st.binary(max_size=120) | json_values.map(lambda v: json.dumps(v).encode())
       | near(SIGN_IN).map(lambda v: json.dumps(v).encode()))
def test_sign_in_bodies(content_type, body):
    request = RequestFactory().generic("POST", "/auth/pi/login/", data=body,
                                       content_type=content_type)
    try:
        data = request_data(request)
    except BadRequestBody as refused:
        assert str(refused)
        counted("property examples")
        return
    assert isinstance(data, dict)
    counted("property examples")


@pytest.mark.django_db
@EXAMPLES
@given(st.binary(max_size=120) | json_values.map(lambda v: json.dumps(v).encode())
       | near(SIGN_IN).map(lambda v: json.dumps(v).encode()))
def test_the_pi_sign_in_view_answers_any_body_without_a_500(body):
    """Whatever the body, ``pi-login`` answers 400 (a body it cannot read) or 401 (a token
    upstream refuses), never 500."""
    from django.test import Client

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add("GET", "https://api.minepi.example/v2/me", status=401,
                 json={"error": "invalid"})
        response = Client().post("/auth/pi/login/", data=body, content_type="application/json")
    # 400: not a JSON object, or no usable token; 401: the token upstream refused.
    assert response.status_code in (400, 401), response.status_code
    counted("property examples")


@pytest.mark.parametrize("body", [{"extras": None}, {"extras": []},
                                  {"extras": {"result_codes": None}}, {"extras": "x"}])
def test_a_refusal_without_result_codes_is_an_outage_not_a_crash(body):
    """Found by test_horizon_submission_answers: ``"extras": null`` raised AttributeError."""
    client = HorizonClient(HORIZON)
    with served("POST", f"{HORIZON}/transactions", 400, json.dumps(body).encode()), \
            pytest.raises(UpstreamUnavailable):
        client.submit("AAAA", TX)


@pytest.mark.parametrize("body", [b'{"id": "x", "sequence": Infinity, "balances": []}',
                                  b'{"id": "x", "sequence": NaN, "balances": []}',
                                  b'{"id": "x", "sequence": 1.5, "balances": []}',
                                  b'{"id": "x", "sequence": true, "balances": []}'])
def test_an_account_sequence_that_is_not_a_string_of_digits_is_an_outage(body):
    """Found by test_horizon_account_answers: ``Infinity`` (which JSON has not, and Python's
    parser took) overflowed ``int()``: OverflowError, a 500."""
    client = HorizonClient(HORIZON)
    with served("GET", f"{HORIZON}/accounts/{ADDRESS}", 200, body), \
            pytest.raises(UpstreamUnavailable):
        client.account(ADDRESS)


@pytest.mark.parametrize("status", [201, 204, 302])
def test_a_safe_answer_neither_200_nor_4xx_says_nothing(status):
    """Found by test_safe_authorization_answers: a 201 was reported as the Launcher's
    documented refusal (UpstreamError) instead of an answer that says nothing."""
    client = SafeLauncherClient(SAFE, authorize_timeout=1.0)
    with served("POST", f"{SAFE}/auth", status, b"{}"), pytest.raises(UpstreamUnavailable):
        client.authorize(APP, ["SAFE_DRIVE_ACCESS"])


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/auth/pi/login/", "/auth/pi/payments/abc/approve/"])
@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", b"a=1&" * 2000),  # over DATA_UPLOAD_MAX_NUMBER_FIELDS
    ("application/json", b'{"accessToken": "' + b"x" * 3_000_000 + b'"}'),  # over 2.5 MB
])
def test_a_body_django_refuses_to_read_is_a_json_400(path, content_type, body, fake_pi):
    """Not Django's HTML 400 page: the endpoints' own JSON 400."""
    from django.test import Client

    response = Client().post(path, data=body, content_type=content_type,
                             HTTP_AUTHORIZATION=f"Bearer {fake_pi.issue_token(username='a')}")
    assert response.status_code == 400, response.content[:200]
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/auth/pi/login/", "/auth/pi/payments/abc/approve/"])
def test_a_broken_multipart_form_is_a_bad_body(path, fake_pi):
    """Found by the schema fuzzer: a multipart form Django cannot split (no boundary)
    raised MultiPartParserError, Django's HTML 400 page."""
    from django.test import Client

    response = Client().post(path, data=b"--b\r\n[{garbage", content_type="multipart/form-data",
                             HTTP_AUTHORIZATION=f"Bearer {fake_pi.issue_token(username='a')}")
    assert response.status_code == 400
    assert response.json()["detail"] == "The body is not a form that can be read."


@pytest.mark.django_db
def test_a_session_request_whose_form_the_csrf_check_cannot_read_is_a_json_400(fake_pi):
    """A pi-login session without the CSRF header: the CSRF check reads the form for the
    token, and Django refuses the broken form there, before the view: still the view's
    JSON 400 ``bad_body``."""
    from django.test import Client
    from django.urls import reverse

    browser = Client(enforce_csrf_checks=True)
    browser.cookies["csrftoken"] = "x" * 32
    signed_in = browser.post(reverse("piauth:pi-login"),
                             {"accessToken": fake_pi.issue_token(username="alice")},
                             HTTP_X_CSRFTOKEN="x" * 32)
    assert signed_in.status_code == 200
    response = browser.post("/auth/pi/payments/abc/cancel/", data=b"x",
                            content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_body"
