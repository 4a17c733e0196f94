"""PeerID sign-in and sessions, as a browser and an API client see them."""

import json
import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_piauth.middleware import PeerIDRefreshMiddleware
from django_piauth.models import PeerIDCredential, Pioneer
from django_piauth.peerid import SESSION_KEY
from django_piauth.signals import peerid_refresh_failed, peerid_refreshed
from tests.helpers import all_at_once

pytestmark = pytest.mark.django_db
LOGIN = "/auth/peerid/login/"
REFRESH = "/api/v1/auth/refreshtoken"
PASSWORD = "correct horse battery"


@pytest.fixture
def alice(fake_peerid):
    return fake_peerid.add_user(login="alice", password=PASSWORD, email="alice@example.com",
                                mobile="+15550100")


def post_json(client, url, data, **extra):
    return client.post(url, json.dumps(data), content_type="application/json", **extra)


def sign_in(client, login="alice", **secret):
    secret = secret or {"password": PASSWORD}
    response = post_json(client, LOGIN, {"login": login, **secret})
    assert response.status_code == 200, response.content
    return PeerIDCredential.objects.get(pioneer__uid=response.json()["uid"])


def expire(credential):
    PeerIDCredential.objects.filter(pk=credential.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1))


# Signing in -----------------------------------------------------------------------------

def test_password_sign_in_links_a_pioneer_and_starts_a_peerid_session(client, alice,
                                                                      fake_peerid):
    response = post_json(client, LOGIN, {"login": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json() == {"uid": str(alice), "username": "alice"}
    pioneer = Pioneer.objects.get()
    assert (pioneer.provider, pioneer.uid, pioneer.user.username) == ("peerid", str(alice),
                                                                      "alice")
    credential = pioneer.peerid_credential
    assert fake_peerid.access_token_valid(credential.access_token)
    assert credential.expires_at is not None
    assert client.session[SESSION_KEY] == credential.pk
    assert client.get("/home/").content == b"Hello alice"
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM django_piauth_peeridcredential")
        raw = cursor.fetchone()
    assert credential.access_token not in raw[0]
    assert credential.refresh_token not in raw[1]


def test_form_encoded_sign_in_with_password_and_mobile(client, alice):
    response = client.post(LOGIN, {"login": "alice", "password": PASSWORD,
                                   "mobile": "+15550100"})
    assert response.status_code == 200
    assert client.session[SESSION_KEY]


@pytest.mark.parametrize("post", [
    lambda client: post_json(client, LOGIN, {"login": "alice", "mobile": "+15550100"}),
    lambda client: client.post(LOGIN, {"login": "alice", "mobile": "+15550100"}),
])
def test_a_phone_number_alone_does_not_sign_in(client, alice, fake_peerid, post):
    response = post(client)
    assert response.status_code == 400
    assert response.json()["code"] == "missing_password"
    assert "password is required" in response.json()["detail"]
    assert fake_peerid.call_count() == 0
    assert AUTH_SESSION_KEY not in client.session
    assert not Pioneer.objects.exists()


def test_the_backend_refuses_a_phone_number_alone_without_asking_peerid(alice, fake_peerid):
    from django.contrib.auth import authenticate

    from django_piauth.backends import PeerIDBackend
    from django_piauth.exceptions import InvalidCredentials

    assert authenticate(None, peerid_login="alice", peerid_mobile="+15550100") is None
    with pytest.raises(InvalidCredentials):
        PeerIDBackend().sign_in_with_password(None, "alice", mobile="+15550100")
    assert fake_peerid.call_count() == 0
    assert not Pioneer.objects.exists()
    user = authenticate(None, peerid_login="alice", peerid_password=PASSWORD,
                        peerid_mobile="+15550100")
    assert user is not None and user.username == "alice"


def test_mobile_sign_in_only_when_the_setting_allows_it(client, alice, fake_peerid, settings):
    from django.contrib.auth import authenticate

    settings.PIAUTH = {**settings.PIAUTH, "PEERID_ALLOW_MOBILE_SIGN_IN": True}
    response = client.post(LOGIN, {"login": "alice", "mobile": "+15550100"})
    assert response.status_code == 200
    assert client.session[SESSION_KEY]
    assert authenticate(None, peerid_login="alice", peerid_mobile="+15550100") is not None
    assert post_json(Client(), LOGIN, {"login": "alice"}).json()["detail"] == (
        "password or mobile is required.")


def test_an_email_login_never_becomes_a_username(client, alice):
    response = post_json(client, LOGIN, {"login": "alice@example.com", "password": PASSWORD})
    assert response.json()["username"] is None
    assert get_user_model().objects.get().username == f"peerid-{alice}"


def test_second_sign_in_replaces_the_tokens_of_the_same_credential(client, alice):
    first = sign_in(client)
    old_token = first.access_token
    second = sign_in(Client())
    assert second.pk == first.pk
    assert second.access_token != old_token
    assert PeerIDCredential.objects.count() == 1


def test_wrong_password_is_refused_and_nobody_is_signed_in(client, alice, fake_peerid):
    response = post_json(client, LOGIN, {"login": "alice", "password": "wrong"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert AUTH_SESSION_KEY not in client.session
    assert not Pioneer.objects.exists()


@pytest.fixture
def login_failures():
    """What ``user_login_failed`` receivers (django-axes, ...) are sent."""
    from django.contrib.auth.signals import user_login_failed

    received = []

    def receiver(sender, credentials, request=None, **kwargs):
        received.append({"credentials": credentials, "request": request, **kwargs})

    user_login_failed.connect(receiver, dispatch_uid="test-login-failures")
    yield received
    user_login_failed.disconnect(dispatch_uid="test-login-failures")


def test_a_refused_password_tells_lockout_tools_the_login_never_the_password(
        client, alice, fake_pi, login_failures):
    response = post_json(client, LOGIN, {"login": "alice", "password": "wrong-123",
                                         "mobile": "+15550100"})
    assert response.status_code == 401
    assert len(login_failures) == 1
    failure = login_failures[0]
    assert failure["credentials"] == {"username": "alice", "peerid_login": "alice"}
    assert failure["request"].path == LOGIN
    assert "wrong-123" not in repr(failure) and "+15550100" not in repr(failure)

    assert post_json(client, LOGIN, {"login": "alice", "password": PASSWORD}).status_code == 200
    assert post_json(client, "/auth/pi/login/", {"accessToken": "forged"}).status_code == 401
    assert len(login_failures) == 1  # neither a sign-in nor a refused Pi token counts


def test_authenticate_with_a_refused_password_fails_once(alice, login_failures):
    from django.contrib.auth import authenticate

    assert authenticate(None, peerid_login="alice", peerid_password="wrong-123") is None
    assert len(login_failures) == 1  # Django's own, with the password cleansed
    assert "wrong-123" not in repr(login_failures)


@pytest.mark.parametrize(("data", "code"), [
    ({"password": PASSWORD}, "missing_login"),
    ({"login": "alice"}, "missing_password"),
    ({"login": "alice", "password": ""}, "missing_password"),
])
def test_incomplete_sign_in_is_400(client, alice, fake_peerid, data, code):
    response = post_json(client, LOGIN, data)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert fake_peerid.call_count() == 0


def test_a_token_issued_for_another_app_is_refused(client, alice, fake_peerid):
    fake_peerid.add_app(99, "other-secret")
    other_app_answer = {"result": fake_peerid.issue_tokens(alice, client_id=99), "status": 200}
    fake_peerid.fail_with(200, body=other_app_answer, path="/api/v1/auth/token")
    response = post_json(client, LOGIN, {"login": "alice", "password": PASSWORD})
    assert response.status_code == 401
    assert response.json()["code"] == "wrong_app"
    assert not Pioneer.objects.exists()
    assert AUTH_SESSION_KEY not in client.session


def test_outage_at_sign_in_is_503(client, alice, fake_peerid):
    fake_peerid.fail_with(500)
    response = post_json(client, LOGIN, {"login": "alice", "password": PASSWORD})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert not Pioneer.objects.exists()


# The authorization-code flow ------------------------------------------------------------

def start_authorize(client, next_url="/home/"):
    response = client.get("/auth/peerid/authorize/", {"next": next_url})
    assert response.status_code == 302
    target = urlsplit(response.url)
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    return target, query


def test_code_flow_signs_in_and_follows_next(client, alice, fake_peerid):
    target, query = start_authorize(client)
    assert f"{target.scheme}://{target.netloc}{target.path}" == (
        f"{settings.PIAUTH['PEERID_URL']}/permissions")
    assert query["client_id"] == "42"
    assert query["redirect_uri"] == "http://testserver/auth/peerid/callback/"
    code = fake_peerid.issue_code(alice)
    response = client.get("/auth/peerid/callback/", {"code": code, "state": query["state"]})
    assert response.status_code == 302
    assert response.url == "/home/"
    # The code flow's token response names no user: the username comes from the uid.
    assert client.get("/home/").content == f"Hello peerid-{alice}".encode()
    assert fake_peerid.call_count("/api/v1/auth/exchange") == 1


def test_code_flow_through_the_fake_consent_page(client, alice, fake_peerid):
    import requests

    fake_peerid.browser_user = alice
    target, _query = start_authorize(client)
    consent = requests.get(target.geturl(), allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    callback = urlsplit(consent.headers["Location"])
    response = client.get(f"{callback.path}?{callback.query}")
    assert response.url == "/home/"
    assert client.session[SESSION_KEY]


@pytest.mark.parametrize("state", ["wrong-state", ""])
def test_wrong_or_missing_state_is_refused_before_any_exchange(client, alice, fake_peerid,
                                                              state):
    start_authorize(client)
    code = fake_peerid.issue_code(alice)
    response = client.get("/auth/peerid/callback/", {"code": code, "state": state})
    assert response.status_code == 400
    assert response.json()["code"] == "bad_state"
    assert fake_peerid.call_count("/api/v1/auth/exchange") == 0
    assert AUTH_SESSION_KEY not in client.session


def test_a_callback_not_started_here_or_replayed_is_refused(client, alice, fake_peerid):
    response = client.get("/auth/peerid/callback/", {"code": "c", "state": "s"})
    assert response.status_code == 400
    _target, query = start_authorize(client)
    url_query = {"code": fake_peerid.issue_code(alice), "state": query["state"]}
    assert client.get("/auth/peerid/callback/", url_query).status_code == 302
    assert client.get("/auth/peerid/callback/", url_query).status_code == 400  # replayed
    assert fake_peerid.call_count("/api/v1/auth/exchange") == 1


def test_an_offsite_next_is_ignored(client, alice, fake_peerid):
    _target, query = start_authorize(client, next_url="https://evil.example/")
    response = client.get("/auth/peerid/callback/",
                          {"code": fake_peerid.issue_code(alice), "state": query["state"]})
    assert response.url == "/home/"  # LOGIN_REDIRECT_URL


def test_a_code_peerid_refuses_is_401(client, alice, fake_peerid):
    _target, query = start_authorize(client)
    response = client.get("/auth/peerid/callback/", {"code": "made-up", "state": query["state"]})
    assert response.status_code == 401
    assert AUTH_SESSION_KEY not in client.session


# Refresh --------------------------------------------------------------------------------

def test_an_expired_credential_is_refreshed_once_before_the_view(client, alice, fake_peerid):
    credential = sign_in(client)
    old_access, old_refresh = credential.access_token, credential.refresh_token
    expire(credential)
    refreshed = []
    peerid_refreshed.connect(lambda **kw: refreshed.append(kw["credential"].pk), weak=False,
                             dispatch_uid="t")
    try:
        assert client.get("/home/").status_code == 200
        assert client.get("/home/").status_code == 200
    finally:
        peerid_refreshed.disconnect(dispatch_uid="t")
    credential.refresh_from_db()
    assert fake_peerid.call_count(REFRESH) == 1
    assert refreshed == [credential.pk]
    assert credential.access_token != old_access and credential.refresh_token != old_refresh
    assert credential.last_refreshed_at is not None
    assert not fake_peerid.access_token_valid(old_access)
    assert fake_peerid.access_token_valid(credential.access_token)


def test_refresh_margin_refreshes_a_little_early(client, alice, fake_peerid, settings):
    credential = sign_in(client)
    PeerIDCredential.objects.filter(pk=credential.pk).update(
        expires_at=timezone.now() + timedelta(seconds=30))  # inside the 60 s margin
    client.get("/home/")
    assert fake_peerid.call_count(REFRESH) == 1


def test_a_live_credential_is_not_refreshed(client, alice, fake_peerid):
    sign_in(client)
    for _ in range(3):
        assert client.get("/home/").status_code == 200
    assert fake_peerid.call_count(REFRESH) == 0


def test_dead_refresh_token_signs_out_html_with_a_redirect(client, alice, fake_peerid):
    credential = sign_in(client)
    fake_peerid.revoke_refresh_token(credential.refresh_token)
    expire(credential)
    failures = []
    peerid_refresh_failed.connect(lambda **kw: failures.append(kw["reason"]), weak=False,
                                  dispatch_uid="t")
    try:
        response = client.get("/home/", HTTP_ACCEPT="text/html")
    finally:
        peerid_refresh_failed.disconnect(dispatch_uid="t")
    assert response.status_code == 302
    assert response.url == "/login/?next=/home/"
    assert AUTH_SESSION_KEY not in client.session and SESSION_KEY not in client.session
    credential.refresh_from_db()
    assert credential.revoked_at is not None and credential.access_token == ""
    assert len(failures) == 1


@pytest.mark.parametrize("headers", [
    {"HTTP_ACCEPT": "application/json"},
    {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"},
])
def test_dead_refresh_token_signs_out_api_callers_with_401(client, alice, fake_peerid,
                                                           headers):
    credential = sign_in(client)
    fake_peerid.revoke_refresh_token(credential.refresh_token)
    expire(credential)
    response = client.get("/api/whoami/", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["code"] == "session_ended"
    assert AUTH_SESSION_KEY not in client.session


def test_drf_class_alone_refreshes_and_signs_out(client, alice, fake_peerid, settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "PeerID" not in m]
    credential = sign_in(client)
    expire(credential)
    response = client.get("/api/whoami/")
    assert response.status_code == 200
    assert response.json()["uid"] == str(alice)
    assert response.json()["auth_type"] == "PeerIDIdentity"
    assert fake_peerid.call_count(REFRESH) == 1
    credential.refresh_from_db()
    fake_peerid.revoke_refresh_token(credential.refresh_token)
    expire(credential)
    response = client.get("/api/whoami/")
    assert response.status_code == 401
    assert AUTH_SESSION_KEY not in client.session


def test_drf_class_enforces_csrf(alice, fake_peerid):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.get("/admin/login/")
    token = csrf_client.cookies["csrftoken"].value
    post_json(csrf_client, LOGIN, {"login": "alice", "password": PASSWORD},
              HTTP_X_CSRFTOKEN=token)
    ops = {"operations": [{"op_name": "transfer"}]}
    assert post_json(csrf_client, "/api/peerid/operations/", ops).status_code == 403
    token = csrf_client.cookies["csrftoken"].value  # rotated at sign-in
    assert post_json(csrf_client, "/api/peerid/operations/", ops,
                     HTTP_X_CSRFTOKEN=token).status_code == 200


def test_outage_during_refresh_is_503_and_keeps_the_session(client, alice, fake_peerid):
    credential = sign_in(client)
    expire(credential)
    fake_peerid.fail_with(500, path=REFRESH, count=2)
    response = client.get("/home/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert client.session[SESSION_KEY] == credential.pk
    assert AUTH_SESSION_KEY in client.session
    api = client.get("/api/whoami/", HTTP_ACCEPT="application/json")
    assert api.status_code == 503
    assert api.json()["code"] == "upstream_unavailable"
    assert client.get("/home/").status_code == 200  # PeerID is back
    assert fake_peerid.call_count(REFRESH) == 3


def test_a_401_on_a_token_call_refreshes_once_and_retries_once(client, alice, fake_peerid):
    sign_in(client)
    fake_peerid.expire_all_access_tokens()
    response = post_json(client, "/api/peerid/operations/",
                         {"operations": [{"op_name": "transfer", "amount": 1}]})
    assert response.status_code == 200
    assert fake_peerid.call_count(REFRESH) == 1
    assert fake_peerid.call_count("/api/v1/app/operations") == 2


def test_revoked_in_the_admin_forces_a_new_sign_in(client, admin_client, alice):
    credential = sign_in(client)
    response = admin_client.post("/admin/django_piauth/peeridcredential/", {
        "action": "revoke_credentials", "_selected_action": [credential.pk]})
    assert response.status_code == 302
    assert client.get("/home/").url == "/login/?next=/home/"


def test_the_admin_never_shows_the_tokens(admin_client, client, alice):
    credential = sign_in(client)
    pages = [admin_client.get("/admin/django_piauth/peeridcredential/"),
             admin_client.get(f"/admin/django_piauth/peeridcredential/{credential.pk}/change/")]
    for page in pages:
        assert page.status_code == 200
        assert credential.access_token not in page.content.decode()
        assert credential.refresh_token not in page.content.decode()


def test_requests_without_a_peerid_session_cost_the_middleware_no_query():
    request = RequestFactory().get("/")

    class LoadedSession(dict):
        pass

    request.session = LoadedSession()
    middleware = PeerIDRefreshMiddleware(lambda r: "response")
    with CaptureQueriesContext(connection) as queries:
        assert middleware(request) == "response"
    assert len(queries) == 0


def test_a_live_peerid_session_costs_one_query(client, alice, django_assert_num_queries):
    from django.contrib.sessions.backends.db import SessionStore

    sign_in(client)
    request = RequestFactory().get("/")
    request.session = SessionStore(client.session.session_key)
    request.session.load()
    request.session._session_cache = request.session.load()
    middleware = PeerIDRefreshMiddleware(lambda r: "response")
    with django_assert_num_queries(1):
        assert middleware(request) == "response"
    assert request.peerid_credential.pioneer.uid == str(alice)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_requests_with_an_expired_credential_refresh_once(live_fake_peerid):
    user_id = live_fake_peerid.add_user(login="alice", password=PASSWORD)
    first = Client()
    credential = sign_in(first)
    expire(credential)
    live_fake_peerid.delay(0.1, path=REFRESH)
    cookie = first.cookies[settings.SESSION_COOKIE_NAME].value
    browsers = [Client() for _ in range(20)]
    for browser in browsers:
        browser.cookies[settings.SESSION_COOKIE_NAME] = cookie

    def one_request(browser):
        response = browser.get("/api/whoami/")
        return response.status_code, response.json().get("uid")

    results = all_at_once(one_request, browsers)
    assert results == [(200, str(user_id))] * 20
    assert live_fake_peerid.call_count(REFRESH) == 1
    credential.refresh_from_db()
    assert live_fake_peerid.access_token_valid(credential.access_token)


def test_no_token_password_or_client_secret_in_logs_at_debug(client, alice, fake_peerid,
                                                             caplog):
    caplog.set_level(logging.DEBUG)
    credential = sign_in(client)
    tokens = [credential.access_token, credential.refresh_token]
    expire(credential)
    client.get("/home/")
    credential.refresh_from_db()
    tokens += [credential.access_token, credential.refresh_token]
    fake_peerid.expire_all_access_tokens()
    post_json(client, "/api/peerid/operations/", {"operations": [{"op_name": "transfer"}]})
    credential.refresh_from_db()
    tokens += [credential.access_token, credential.refresh_token]
    start_authorize(Client())
    post_json(Client(), LOGIN, {"login": "alice", "password": "wrong-password-123"})
    fake_peerid.revoke_refresh_token(credential.refresh_token)
    expire(credential)
    client.get("/home/")

    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert len(caplog.records) >= 5
    for secret in [*tokens, PASSWORD, "wrong-password-123",
                   settings.PIAUTH["PEERID_CLIENT_SECRET"]]:
        assert secret not in logged


def test_the_middleware_works_under_asgi_too(client, alice, fake_peerid):
    from asgiref.sync import async_to_sync, iscoroutinefunction
    from django.contrib.sessions.backends.db import SessionStore

    credential = sign_in(client)
    expire(credential)

    async def view(request):
        return "view ran"

    middleware = PeerIDRefreshMiddleware(view)
    assert iscoroutinefunction(middleware)

    anonymous = RequestFactory().get("/")
    anonymous.session = SessionStore()
    assert async_to_sync(middleware)(anonymous) == "view ran"

    request = RequestFactory().get("/")
    request.session = SessionStore(client.session.session_key)
    request.user = credential.pioneer.user
    assert async_to_sync(middleware)(request) == "view ran"
    assert fake_peerid.call_count(REFRESH) == 1
    assert request.peerid_credential.access_token != credential.access_token


def test_a_first_sign_in_that_loses_the_race_recovers_inside_atomic_requests(
        client, alice, fake_peerid, monkeypatch):
    """Two first sign-ins of one person: the other one saves its credential right after
    our lookup found none. Under ATOMIC_REQUESTS the IntegrityError of our save must not
    break the request's transaction (it did: TransactionManagementError, a 500)."""
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    raced = []

    def the_other_sign_in_saves_right_after_our_lookup(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if (not raced and sql.startswith("SELECT")
                and "django_piauth_peeridcredential" in sql and "pioneer_id" in sql):
            raced.append(params[0])
            PeerIDCredential.objects.create(pioneer_id=params[0], access_token="theirs")
        return result

    with connection.execute_wrapper(the_other_sign_in_saves_right_after_our_lookup):
        response = post_json(client, LOGIN, {"login": "alice", "password": PASSWORD})
    assert raced
    assert response.status_code == 200, response.content
    credential = PeerIDCredential.objects.get()
    assert fake_peerid.access_token_valid(credential.access_token)
    assert client.session[SESSION_KEY] == credential.pk
    assert client.get("/home/").content == b"Hello alice"
