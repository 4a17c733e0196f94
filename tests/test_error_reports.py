"""An unexpected error during sign-in: Django's error report (the e-mail to ADMINS, with
its HTML part, which shows every frame's local variables) carries no password or token."""

import json
import logging

import pytest
from django.core import mail
from django.test import Client
from django.utils.log import AdminEmailHandler

from django_piauth.providers import peerid as peerid_provider
from django_piauth.providers import pi as pi_provider

pytestmark = pytest.mark.django_db
PASSWORD, MOBILE = "correct horse battery", "+15550100"


@pytest.fixture
def error_report(settings):
    """The text and HTML of the error report mailed for the request's unexpected error."""
    settings.ADMINS = [("Admin", "admin@example.com")]
    handler = AdminEmailHandler(include_html=True)
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield lambda: (mail.outbox[-1].body, mail.outbox[-1].alternatives[0][0])
    logger.removeHandler(handler)


def post(url, data, as_json):
    client = Client(raise_request_exception=False)
    if as_json:
        return client.post(url, json.dumps(data), content_type="application/json")
    return client.post(url, data)


def boom(*args, **kwargs):
    raise RuntimeError("unexpected")


def assert_not_reported(report, secrets):
    text, html = report
    assert "RuntimeError" in text and "RuntimeError" in html
    for secret in secrets:
        assert secret not in text
        assert secret not in html


@pytest.mark.parametrize("as_json", [True, False])
def test_the_peerid_password_and_mobile_stay_out_of_error_reports(
        fake_peerid, error_report, monkeypatch, as_json):
    fake_peerid.add_user(login="alice", password=PASSWORD, mobile=MOBILE)
    monkeypatch.setattr(peerid_provider, "send", boom)  # deep in the call to PeerID
    response = post("/auth/peerid/login/",
                    {"login": "alice", "password": PASSWORD, "mobile": MOBILE}, as_json)
    assert response.status_code == 500
    assert_not_reported(error_report(), [PASSWORD, MOBILE])


def test_peerid_tokens_stay_out_of_error_reports(fake_peerid, error_report, monkeypatch):
    fake_peerid.add_user(login="alice", password=PASSWORD)
    parse_tokens = peerid_provider.parse_tokens
    issued = []

    def parse_then_fail(payload, client_id):
        tokens = parse_tokens(payload, client_id)
        issued.extend([tokens.access_token, tokens.refresh_token])
        raise RuntimeError("unexpected")

    monkeypatch.setattr(peerid_provider, "parse_tokens", parse_then_fail)
    response = post("/auth/peerid/login/", {"login": "alice", "password": PASSWORD}, True)
    assert response.status_code == 500
    assert len(issued) == 2
    assert_not_reported(error_report(), [PASSWORD, *issued])


@pytest.mark.parametrize("as_json", [True, False])
@pytest.mark.parametrize("where", ["upstream call", "linking"])
def test_the_pi_access_token_stays_out_of_error_reports(
        fake_pi, error_report, monkeypatch, as_json, where):
    from django_piauth import backends

    token = fake_pi.issue_token(username="alice")
    if where == "upstream call":
        monkeypatch.setattr(pi_provider, "send", boom)
    else:
        monkeypatch.setattr(backends, "linked_pioneer", boom)
    response = post("/auth/pi/login/", {"accessToken": token}, as_json)
    assert response.status_code == 500
    assert_not_reported(error_report(), [token])


def test_the_pi_access_token_of_an_api_call_stays_out_of_error_reports(
        fake_pi, error_report, monkeypatch):
    token = fake_pi.issue_token(username="alice")
    monkeypatch.setattr(pi_provider, "send", boom)
    client = Client(raise_request_exception=False)
    response = client.get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 500
    assert_not_reported(error_report(), [token])


@pytest.mark.parametrize("where", ["middleware refresh", "refresh on a 401"])
def test_peerid_refresh_tokens_and_the_client_secret_stay_out_of_error_reports(
        fake_peerid, error_report, monkeypatch, settings, where):
    from datetime import timedelta

    from django.utils import timezone

    from django_piauth.models import PeerIDCredential
    from django_piauth.peerid import peerid_operations

    fake_peerid.add_user(login="alice", password=PASSWORD)
    client = Client(raise_request_exception=False)
    client.post("/auth/peerid/login/", {"login": "alice", "password": PASSWORD})
    credential = PeerIDCredential.objects.get()
    secrets = [credential.access_token, credential.refresh_token,
               settings.PIAUTH["PEERID_CLIENT_SECRET"]]
    real_send = peerid_provider.send

    def boom_on_refresh(method, url, **kwargs):
        if url.endswith("/refreshtoken"):
            raise RuntimeError("unexpected")
        return real_send(method, url, **kwargs)

    monkeypatch.setattr(peerid_provider, "send", boom_on_refresh)
    if where == "middleware refresh":
        PeerIDCredential.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        response = client.get("/home/")
        assert response.status_code == 500
        report = error_report()
    else:
        from django.views.debug import ExceptionReporter

        fake_peerid.expire_access_token(credential.access_token)  # the call answers 401
        with pytest.raises(RuntimeError) as raised:
            peerid_operations(credential, [{"op": 1}])
        frames_below_this_test = raised.tb.tb_next
        reporter = ExceptionReporter(None, raised.type, raised.value, frames_below_this_test)
        report = (reporter.get_traceback_text(), reporter.get_traceback_html())
    assert_not_reported(report, secrets)


def test_the_server_api_key_stays_out_of_error_reports(fake_pi, monkeypatch, settings):
    from django.views.debug import ExceptionReporter

    from django_piauth.providers.pi import get_pi_client

    monkeypatch.setattr(pi_provider, "send", boom)
    with pytest.raises(RuntimeError) as raised:
        get_pi_client().get_payment("abc")
    reporter = ExceptionReporter(None, raised.type, raised.value, raised.tb.tb_next)
    text, html = reporter.get_traceback_text(), reporter.get_traceback_html()
    assert "RuntimeError" in html
    key = settings.PIAUTH["PI_SERVER_API_KEY"]
    assert key not in text and key not in html
