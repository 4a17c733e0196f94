"""Property tests (hypothesis) for the parsers of outside input (issue 15, point 3, in
part): any input gives the documented result or the documented error, never another
exception. Each strategy mixes random JSON with near-valid bodies, one field replaced."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import exceptions
from rest_framework.test import APIRequestFactory

from django_piauth import drf
from django_piauth.exceptions import InvalidToken, UpstreamUnavailable, WrongApp
from django_piauth.providers.payment_dto import PaymentDTO, parse_amount, parse_payment
from django_piauth.providers.peerid import PeerIDTokens, parse_tokens
from django_piauth.providers.pi import PiIdentity, parse_me
from django_piauth.testing import FakePiPlatform
from django_piauth.untrusted_json import NotJSON, loads
from tests.counts import counted

EXAMPLES = settings(max_examples=300, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)


@st.composite
def near(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """``valid`` with one field (maybe nested one level) replaced or removed."""
    body = {key: (dict(value) if isinstance(value, dict) else value)
            for key, value in valid.items()}
    key = draw(st.sampled_from(sorted(body)))
    if isinstance(body[key], dict) and body[key] and draw(st.booleans()):
        inner = draw(st.sampled_from(sorted(body[key])))
        body[key][inner] = draw(json_values)
    elif draw(st.booleans()):
        del body[key]
    else:
        body[key] = draw(json_values)
    return body


def _payment_dto() -> dict[str, Any]:
    fake = FakePiPlatform()
    return fake.payment(fake.create_user_payment("uid-1", "1.25", "A hat", {"sku": 1}))


ME = {"uid": "uid-1", "username": "alice",
      "credentials": {"scopes": ["username"], "valid_until": {"timestamp": 1767225600,
                                                              "iso8601": "2026-01-01T00:00:00Z"}}}
TOKENS = {"result": {"token": "t", "refresh_token": "r", "user_id": 7, "app_id": 42,
                     "expires": "2030-01-01T00:00:00Z"}}


@EXAMPLES
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
       | json_values.map(lambda v: repr(v).encode()))
def test_untrusted_json(data):
    counted("property examples")
    with contextlib.suppress(NotJSON):  # the documented error; anything else fails
        loads(data)


def test_untrusted_json_deep_nesting():
    with pytest.raises(NotJSON):
        loads(b"[" * 100_000)


@EXAMPLES
@given(json_values | near(ME))
def test_me_answers(body):
    counted("property examples")
    try:
        identity = parse_me(body)
    except (UpstreamUnavailable, InvalidToken):
        return
    assert isinstance(identity, PiIdentity) and isinstance(identity.uid, str) and identity.uid


@EXAMPLES
@given(json_values | near(_payment_dto()))
def test_payment_dtos(body):
    counted("property examples")
    try:
        dto = parse_payment(body)
    except UpstreamUnavailable:
        return
    assert isinstance(dto, PaymentDTO)
    assert isinstance(dto.amount, Decimal) and dto.amount > 0
    assert dto.amount == dto.amount.quantize(Decimal("0.0000001"))


@EXAMPLES
@given(json_values | st.decimals().map(str))
def test_amounts(value):
    counted("property examples")
    try:
        amount = parse_amount(value)
    except UpstreamUnavailable:
        return
    assert amount.is_finite() and amount > 0


@EXAMPLES
@given(json_values | near(TOKENS))
def test_peerid_token_answers(body):
    counted("property examples")
    try:
        tokens = parse_tokens(body, 42)
    except (UpstreamUnavailable, WrongApp):
        return
    assert isinstance(tokens, PeerIDTokens)


class _RefusingBackend:
    provider = "pi"

    def authenticate_token(self, request, token):
        raise InvalidToken("refused")


@EXAMPLES
@given(st.text(max_size=80) | st.sampled_from(["Bearer", "Bearer ", "bearer x", "Bearer  x",
                                                "Bearer x y", "Basic x", "BEARER tok"]))
def test_authorization_headers(header):
    counted("property examples")
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=header)
    authentication = drf.PiAuthentication()
    original = drf.configured_backend
    drf.configured_backend = lambda cls: (_RefusingBackend(), "x")
    try:
        outcome = authentication.authenticate(drf.Request(request))
    except exceptions.AuthenticationFailed:
        return
    finally:
        drf.configured_backend = original
    assert outcome is None  # another scheme or none: left to other classes
