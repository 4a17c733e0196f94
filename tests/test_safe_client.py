"""The SAFE Launcher client (providers/safe.py) and the grant helpers, through ``responses``."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_piauth.exceptions import (
    PiAuthError,
    SafeAuthorizationDenied,
    SafeGrantDead,
    UpstreamError,
    UpstreamUnavailable,
)
from django_piauth.models import SafeGrant
from django_piauth.providers.safe import (
    SafeApp,
    SafeAuthorization,
    app_from_setting,
    get_safe_client,
    permissions_from_setting,
)
from django_piauth.safe import authorize_and_store, check_grant, mark_dead, revoke

pytestmark = pytest.mark.django_db

APP = SafeApp(name="Shop", id="com.example.shop", version="1.0", vendor="Example")
SETTING = {"name": "Shop", "id": "com.example.shop", "version": "1.0", "vendor": "Example"}


@pytest.fixture
def client(fake_safe):
    return get_safe_client()


def test_defaults_and_the_authorize_timeout(fake_safe, piauth_responses, settings):
    client = get_safe_client()
    assert client.base_url == "http://localhost:8100" == fake_safe.url
    assert repr(client) == "<SafeLauncherClient http://localhost:8100>"
    client.authorize(APP, ["SAFE_DRIVE_ACCESS"])
    request = piauth_responses.calls[-1].request
    assert request.req_kwargs["timeout"] == (3.0, 300)
    assert json.loads(request.body) == {"app": SETTING, "permissions": ["SAFE_DRIVE_ACCESS"]}
    assert "Authorization" not in request.headers

    settings.PIAUTH = {**settings.PIAUTH, "SAFE_AUTHORIZE_TIMEOUT": 42, "READ_TIMEOUT": 2.0}
    client = get_safe_client()  # rebuilt from the new settings
    assert client.authorize_timeout == 42
    token = client.authorize(APP, ["SAFE_DRIVE_ACCESS"]).token
    assert piauth_responses.calls[-1].request.req_kwargs["timeout"] == (3.0, 42)
    client.check(token)
    assert piauth_responses.calls[-1].request.req_kwargs["timeout"] == (3.0, 2.0)


def test_authorize_check_revoke(client, fake_safe):
    result = client.authorize(APP, ["SAFE_DRIVE_ACCESS", "SAFE_DRIVE_ACCESS"])
    assert result.permissions == ("SAFE_DRIVE_ACCESS",)
    assert result.token not in repr(result)
    assert fake_safe.authorizations[0].permissions_requested == ["SAFE_DRIVE_ACCESS"]
    assert client.check(result.token) is True
    assert client.revoke(result.token) is True
    assert client.check(result.token) is False
    assert client.revoke(result.token) is False


def test_denied(client, fake_safe):
    fake_safe.deny()
    with pytest.raises(SafeAuthorizationDenied, match="denied at the SAFE Launcher"):
        client.authorize(APP, ["SAFE_DRIVE_ACCESS"])


def test_the_launchers_400_description(client, fake_safe):
    fake_safe.known_permissions = ()
    with pytest.raises(UpstreamError, match=r"Invalid permissions$") as refused:
        client.authorize(APP, ["SAFE_DRIVE_ACCESS"])
    assert refused.value.status == 400
    with pytest.raises(UpstreamError, match="Values cannot be empty"):
        client.authorize(SafeApp(name=" ", id="x", version="1", vendor="v"), [])
    fake_safe.fail_with(400, "Bad request", content_type="text/plain")
    with pytest.raises(UpstreamError, match="Bad request"):
        client.authorize(APP, [])
    fake_safe.fail_with(400, {"errorCode": 400, "description": "x" * 500 + "\x1b[2J"})
    with pytest.raises(UpstreamError) as long:
        client.authorize(APP, [])
    assert "\x1b" not in str(long.value) and len(str(long.value)) < 320


@pytest.mark.parametrize(
    "answer",
    [
        (500, {"errorCode": 500, "description": "boom"}),
        (503, "down"),
        (200, "not json"),
        (200, {"permissions": ["SAFE_DRIVE_ACCESS"]}),
        (200, {"token": "has a space", "permissions": []}),
        (200, {"token": "a.b.c", "permissions": "SAFE_DRIVE_ACCESS"}),
        (200, ["a.b.c"]),
    ],
)
def test_an_answer_that_says_nothing_is_an_outage(client, fake_safe, answer):
    status, body = answer
    fake_safe.fail_with(status, body if not isinstance(body, str) else body.encode())
    with pytest.raises(UpstreamUnavailable):
        client.authorize(APP, ["SAFE_DRIVE_ACCESS"])


def test_permissions_missing_from_the_answer_are_none(client, fake_safe):
    fake_safe.fail_with(200, {"token": "a.b.c"})
    assert client.authorize(APP, []) == SafeAuthorization(token="a.b.c", permissions=())


def test_a_person_slower_than_the_timeout(client, fake_safe):
    fake_safe.slow_answer(301)
    with pytest.raises(UpstreamUnavailable, match=r"nobody answered .* within 300 s"):
        client.authorize(APP, ["SAFE_DRIVE_ACCESS"])
    fake_safe.slow_answer(11)
    with pytest.raises(UpstreamUnavailable, match="within 10 s"):
        client.authorize(APP, ["SAFE_DRIVE_ACCESS"], timeout=10)


def test_a_dropped_connection_is_not_called_a_missing_launcher(client, fake_safe):
    fake_safe.drop_connection()
    with pytest.raises(UpstreamUnavailable) as dropped:
        client.authorize(APP, ["SAFE_DRIVE_ACCESS"])
    assert "no SAFE Launcher" not in str(dropped.value)
    assert "could not be reached" in str(dropped.value)


def test_authorised_requests(client, fake_safe):
    token = fake_safe.issue_token()
    response = client.request("GET", "/nfs/directory/app/photos", token)
    assert response.status == 200 and response.json()["info"]["name"] == "photos"
    assert client.request("GET", "/nothing-here", token).status == 404
    fake_safe.fail_with(502, "bad gateway")
    with pytest.raises(UpstreamUnavailable):
        client.request("GET", "/nfs/directory/app/", token)
    fake_safe.restart()
    with pytest.raises(SafeGrantDead, match="piauth_safe_authorize") as dead:
        client.request("GET", "/nfs/directory/app/", token)
    assert token not in str(dead.value)
    for path in ("nfs", "//evil.example/x", "http://evil.example/x"):
        with pytest.raises(ValueError):
            client.request("GET", path, token)


def test_our_authorization_header_wins(client, fake_safe):
    token = fake_safe.issue_token()
    response = client.request("GET", "/nfs/directory/app/", token,
                              headers={"Authorization": "Bearer forged.for.sure"})
    assert response.status == 200


def test_exceptions_are_piauth_errors():
    for exc in (SafeAuthorizationDenied, SafeGrantDead, UpstreamError, UpstreamUnavailable):
        assert issubclass(exc, PiAuthError)
    assert SafeGrantDead.command == "piauth_safe_authorize"


# Settings helpers ------------------------------------------------------------------------

def test_app_and_permissions_from_settings():
    assert app_from_setting(SETTING) == APP
    assert str(APP) == "Shop 1.0 (id 'com.example.shop', vendor 'Example')"
    with pytest.raises(ImproperlyConfigured, match="not set"):
        app_from_setting(None)
    with pytest.raises(ImproperlyConfigured, match=r"'id' is missing; unknown key.*'ID'"):
        app_from_setting({"name": "a", "ID": "b", "version": "1", "vendor": "v"})
    with pytest.raises(ImproperlyConfigured, match="'version' must be a non-empty string"):
        app_from_setting({**SETTING, "version": 1})
    assert permissions_from_setting(["LOW_LEVEL_API", "SAFE_DRIVE_ACCESS", "LOW_LEVEL_API"]) \
        == ("LOW_LEVEL_API", "SAFE_DRIVE_ACCESS")
    assert permissions_from_setting([]) == ()
    with pytest.raises(ImproperlyConfigured, match=r"'NFS'.*SAFE_DRIVE_ACCESS, LOW_LEVEL_API"):
        permissions_from_setting(["NFS"])


# The grant helpers -----------------------------------------------------------------------

@pytest.fixture
def configured(fake_safe, settings):
    settings.PIAUTH = {**settings.PIAUTH, "SAFE_APP": dict(SETTING),
                       "SAFE_PERMISSIONS": ["SAFE_DRIVE_ACCESS"]}
    return fake_safe


def test_mark_dead_leaves_a_grant_authorized_since_alone(configured):
    stale = authorize_and_store()
    fresh = authorize_and_store()  # e.g. the command ran meanwhile
    assert fresh.pk == stale.pk and fresh.authorized_at > stale.authorized_at
    assert mark_dead(stale) is False
    assert SafeGrant.objects.get().is_valid
    assert mark_dead(fresh) is True
    assert mark_dead(fresh) is False
    assert not SafeGrant.objects.get().is_valid


def test_check_grant_outage_changes_nothing(configured):
    grant = authorize_and_store()
    configured.fail_with(503, "down")
    with pytest.raises(UpstreamUnavailable):
        check_grant(grant)
    grant.refresh_from_db()
    assert grant.is_valid
    assert check_grant(grant) is True


def test_revoke_forgets_an_undecryptable_token_without_a_call(configured, settings):
    authorize_and_store()
    settings.PIAUTH = {**settings.PIAUTH, "TOKEN_ENCRYPTION_KEYS": [
        "0PGyKdEtC6BZ8X1KxO2Xl7yqSgWmYfFb6NG0rHn1bH8="]}
    grant = SafeGrant.objects.get()
    assert grant.token is None
    calls = len(configured.calls)
    assert revoke(grant) == "nothing stored"
    assert len(configured.calls) == calls
    assert SafeGrant.objects.get().token == ""
