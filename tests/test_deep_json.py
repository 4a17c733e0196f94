"""Deeply nested JSON, from a client or from an upstream, is bad input or an outage: never
a 500 (json raises RecursionError on it, which is not a ValueError)."""

import json

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_piauth.models import PeerIDCredential, Pioneer, SafeGrant

pytestmark = pytest.mark.django_db

#: About 200 KB of '[': deeper than any recursion limit, smaller than MAX_RESPONSE_BYTES.
DEEP = b"[" * 200_000
PASSWORD = "correct horse battery"


@pytest.mark.parametrize("url", ["/auth/pi/login/", "/auth/peerid/login/", "/auth/logout/"])
@pytest.mark.parametrize("body", [DEEP, b'{"accessToken": ' + b"[" * 1000 + b"]" * 1000 + b"}",
                                  b"[" * 1000 + b"]" * 1000])
def test_a_deeply_nested_client_body_is_400(client, url, body):
    response = client.post(url, body, content_type="application/json")
    if url == "/auth/logout/":  # logout signs out whatever the body says
        assert response.status_code == 200
        return
    assert response.status_code == 400  # bad_body, or a nested accessToken: missing_token


def test_a_deeply_nested_client_body_gets_a_clear_message(client):
    response = client.post("/auth/pi/login/", DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "The body is nested too deeply.", "code": "bad_body"}


def test_a_deeply_nested_pi_server_call_answer_is_unavailable(fake_pi):
    from django_piauth.exceptions import UpstreamUnavailable
    from django_piauth.providers.pi import get_pi_client

    fake_pi.fail_with(404, DEEP)
    with pytest.raises(UpstreamUnavailable):
        get_pi_client().get_payment("abc")


@pytest.mark.parametrize("status", [200, 500])
def test_a_deeply_nested_pi_answer_is_503(client, fake_pi, status):
    fake_pi.fail_with(status, DEEP)
    response = client.post("/auth/pi/login/", {"accessToken": fake_pi.issue_token()})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert not get_user_model().objects.exists()
    assert SESSION_KEY not in client.session


@pytest.mark.parametrize("status", [200, 400, 401])
def test_a_deeply_nested_peerid_answer_is_503(client, fake_peerid, status):
    fake_peerid.add_user(login="alice", password=PASSWORD)
    fake_peerid.fail_with(status, DEEP)
    response = client.post("/auth/peerid/login/", json.dumps(
        {"login": "alice", "password": PASSWORD}), content_type="application/json")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert not Pioneer.objects.exists() and not PeerIDCredential.objects.exists()
    assert SESSION_KEY not in client.session


def test_a_deeply_nested_safe_answer_is_a_command_error(fake_safe, settings):
    settings.PIAUTH = {**settings.PIAUTH, "SAFE_APP": {
        "name": "Shop", "id": "com.example.shop", "version": "1.0", "vendor": "Example"}}
    SafeGrant.objects.create(launcher_url=fake_safe.url, app_id="com.example.shop",
                             app_vendor="Example", app_name="Shop", app_version="1.0",
                             token="a-token", is_valid=True, authorized_at=timezone.now())
    fake_safe.fail_with(500, DEEP)
    with pytest.raises(CommandError, match="SAFE Launcher"):
        call_command("piauth_safe_status")
    fake_safe.fail_with(418, DEEP)
    with pytest.raises(CommandError, match="SAFE Launcher"):
        call_command("piauth_safe_status")
    fake_safe.fail_with(200, DEEP, path="/auth")
    with pytest.raises(CommandError, match="SAFE Launcher"):
        call_command("piauth_safe_authorize", "--force")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", '{"a": [1, NaN]}'])
def test_nan_and_infinity_are_not_json(text):
    """Python's parser takes them; JSON has not, and an Infinity overflows int()."""
    from django_piauth.untrusted_json import NotJSON, loads

    with pytest.raises(NotJSON):
        loads(text)
