"""Session sign-in for template sites: piauth:pi-login and piauth:logout."""

import json

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.test import Client, override_settings
from django.urls import reverse

from django_piauth.models import Pioneer

pytestmark = pytest.mark.django_db
LOGIN = "/auth/pi/login/"


def post_json(client, url, data, **extra):
    return client.post(url, json.dumps(data), content_type="application/json", **extra)


def test_urls_are_named_in_the_piauth_namespace():
    assert reverse("piauth:pi-login") == LOGIN
    assert reverse("piauth:logout") == "/auth/logout/"


def test_json_sign_in_starts_a_session(client, fake_pi):
    token = fake_pi.issue_token(username="alice")
    response = post_json(client, LOGIN, {"accessToken": token})
    assert response.status_code == 200
    assert response.json() == {"uid": fake_pi.uid_for("alice"), "username": "alice"}
    user = get_user_model().objects.get()
    assert client.session[SESSION_KEY] == str(user.pk)
    assert response["Cache-Control"].startswith("max-age=0")
    assert token not in response.content.decode()


def test_form_encoded_sign_in_works_too(client, fake_pi):
    response = client.post(LOGIN, {"accessToken": fake_pi.issue_token(username="bob")})
    assert response.status_code == 200
    assert response.json()["username"] == "bob"
    assert SESSION_KEY in client.session


def test_rejected_token_is_401_and_no_session(client, fake_pi):
    response = post_json(client, LOGIN, {"accessToken": "forged"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["code"] == "invalid_token"
    assert SESSION_KEY not in client.session
    assert not Pioneer.objects.exists()


def test_outage_is_503_and_keeps_an_existing_session(client, fake_pi):
    token = fake_pi.issue_token(username="alice")
    post_json(client, LOGIN, {"accessToken": token})
    signed_in_as = client.session[SESSION_KEY]
    fake_pi.fail_with(502)
    response = post_json(client, LOGIN, {"accessToken": fake_pi.issue_token(username="bob")})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert client.session[SESSION_KEY] == signed_in_as
    assert list(Pioneer.objects.values_list("username", flat=True)) == ["alice"]


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        ("{not json", "application/json", "bad_body"),
        ("[1, 2]", "application/json", "bad_body"),
        ("{}", "application/json", "missing_token"),
        ('{"accessToken": 12}', "application/json", "missing_token"),
        ('{"accessToken": ""}', "application/json", "missing_token"),
    ],
)
def test_bad_bodies_are_400_with_a_clear_error(client, fake_pi, body, content_type, code):
    response = client.post(LOGIN, body, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert fake_pi.call_count("/v2/me") == 0


def test_malformed_token_is_401_without_upstream_call(client, fake_pi):
    response = post_json(client, LOGIN, {"accessToken": "x" * 5000})
    assert response.status_code == 401
    assert response.json()["code"] == "malformed_token"
    assert fake_pi.call_count("/v2/me") == 0


def test_get_is_not_allowed(client):
    assert client.get(LOGIN).status_code == 405


def test_csrf_protection_stays_on(fake_pi):
    csrf_client = Client(enforce_csrf_checks=True)
    token = fake_pi.issue_token(username="alice")
    refused = post_json(csrf_client, LOGIN, {"accessToken": token})
    assert refused.status_code == 403
    assert fake_pi.call_count("/v2/me") == 0

    csrf_client.get("/admin/login/")  # any page that sets the CSRF cookie
    csrf_token = csrf_client.cookies["csrftoken"].value
    accepted = post_json(csrf_client, LOGIN, {"accessToken": token}, HTTP_X_CSRFTOKEN=csrf_token)
    assert accepted.status_code == 200


def test_logout_ends_the_session(client, fake_pi):
    post_json(client, LOGIN, {"accessToken": fake_pi.issue_token(username="alice")})
    response = client.post("/auth/logout/")
    assert response.status_code == 200
    assert SESSION_KEY not in client.session


def test_logout_follows_only_a_same_site_next(client):
    assert client.post("/auth/logout/", {"next": "/home/"}).url == "/home/"
    response = client.post("/auth/logout/", {"next": "https://evil.example/"})
    assert response.status_code == 200
    assert client.get("/auth/logout/").status_code == 405


@override_settings(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"])
def test_sign_in_without_the_backend_listed_says_what_to_fix(client, fake_pi):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="PiBackend in AUTHENTICATION_BACKENDS"):
        post_json(client, LOGIN, {"accessToken": fake_pi.issue_token(username="a")})
