"""Against the fake Pi Platform as a real HTTP server on 127.0.0.1, with real threads."""

import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from django_piauth.models import Pioneer
from django_piauth.providers.pi import get_pi_client
from django_piauth.signals import pioneer_created
from tests.helpers import all_at_once

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_twenty_concurrent_first_requests_make_one_user_and_one_pioneer(live_fake_pi):
    live_fake_pi.delay(0.05)  # keep every request in flight at once
    token = live_fake_pi.issue_token(username="alice")
    created = []
    pioneer_created.connect(lambda **kw: created.append(kw["pioneer"].pk), weak=False,
                            dispatch_uid="count-created")

    def one_request(_):
        response = Client().get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}")
        return response.status_code, response.json().get("user")

    try:
        results = all_at_once(one_request, range(20))
    finally:
        pioneer_created.disconnect(dispatch_uid="count-created")

    assert results == [(200, "alice")] * 20
    assert get_user_model().objects.count() == 1
    assert Pioneer.objects.count() == 1
    assert len(created) == 1
    assert live_fake_pi.call_count("/v2/me") == 1


def test_twenty_concurrent_new_pioneers_with_one_username_get_distinct_users(live_fake_pi):
    live_fake_pi.delay(0.05)
    tokens = [live_fake_pi.issue_token(uid=f"uid-{i}", username="sam") for i in range(20)]

    def one_request(token):
        return Client().get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code

    assert all_at_once(one_request, tokens) == [200] * 20
    names = set(get_user_model().objects.values_list("username", flat=True))
    assert len(names) == 20
    assert "sam" in names
    assert Pioneer.objects.count() == 20


def test_real_socket_timeouts_give_503(live_fake_pi, settings):
    settings.PIAUTH = {**settings.PIAUTH, "READ_TIMEOUT": 0.2}
    live_fake_pi.delay(1.0, count=1)
    token = live_fake_pi.issue_token(username="alice")
    response = Client().get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_connection_refused_gives_503(settings, db):
    settings.PIAUTH = {"PI_API_URL": "http://127.0.0.1:9"}  # discard port: nothing listens
    response = Client().get("/api/whoami/", HTTP_AUTHORIZATION="Bearer some-token")
    assert response.status_code == 503


def test_no_token_and_no_key_in_any_log_line_at_debug(live_fake_pi, caplog, settings):
    """Everything that logs (ours, requests/urllib3, Django) during sign-in, at DEBUG."""
    key = "live-server-api-key-5f1e"
    live_fake_pi.set_server_api_key(key)
    settings.PIAUTH = {**settings.PIAUTH, "PI_SERVER_API_KEY": key}
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    tokens = [live_fake_pi.issue_token(username="alice") for _ in range(3)]
    client = Client()
    assert client.post("/auth/pi/login/", {"accessToken": tokens[0]}).status_code == 200
    assert client.get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {tokens[1]}").status_code == 200
    assert client.post("/auth/pi/login/", {"accessToken": "forged-token-value"}).status_code == 401
    live_fake_pi.fail_with(500)
    assert client.post("/auth/pi/login/", {"accessToken": tokens[2]}).status_code == 503
    assert get_pi_client().incomplete_server_payments() == []

    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert len(caplog.records) >= 5, "the test must actually capture log output"
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    for secret in [*tokens, "forged-token-value", key]:
        assert secret not in logged
