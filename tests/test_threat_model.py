"""Threat-model properties that SECURITY.md names and no other test spells out.

Each test plays the attacker: a frontend that forges a uid, a session planted before
sign-in, one account's session reused by another person, a replayed OAuth callback.
"""

import json

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from django_piauth.models import Pioneer
from django_piauth.peerid import SESSION_KEY as PEERID_SESSION_KEY

pytestmark = pytest.mark.django_db
PI_LOGIN = "/auth/pi/login/"
PEERID_LOGIN = "/auth/peerid/login/"
PASSWORD = "correct horse battery"


def post_json(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


def test_a_uid_sent_by_the_frontend_is_ignored(client, fake_pi):
    """Only /v2/me names the Pioneer: a uid, username or user id in the body counts for
    nothing, in JSON and in a form."""
    victim_token = fake_pi.issue_token(username="victim")
    post_json(Client(), PI_LOGIN, {"accessToken": victim_token})
    victim = Pioneer.objects.get()
    token = fake_pi.issue_token(username="mallory")
    response = post_json(client, PI_LOGIN, {
        "accessToken": token, "uid": victim.uid, "username": "victim",
        "user": {"uid": victim.uid}, "user_id": victim.user_id,
    })
    assert response.json()["uid"] == fake_pi.uid_for("mallory") != victim.uid
    assert client.session[SESSION_KEY] != str(victim.user_id)
    form = client.post(PI_LOGIN, {"accessToken": fake_pi.issue_token(username="mallory"),
                                  "uid": victim.uid})
    assert form.json()["uid"] == fake_pi.uid_for("mallory")
    assert Pioneer.objects.filter(uid=victim.uid).count() == 1


def test_a_session_planted_before_sign_in_is_not_the_one_signed_in(client, fake_pi):
    """Session fixation: the session key changes when the Pioneer signs in."""
    client.get("/auth/peerid/authorize/")  # any request that gives the browser a session
    planted = client.session.session_key
    assert planted
    post_json(client, PI_LOGIN, {"accessToken": fake_pi.issue_token(username="alice")})
    assert client.session.session_key != planted
    assert SESSION_KEY in client.session


def test_a_peerid_sign_in_cycles_the_session_too(client, fake_peerid):
    fake_peerid.add_user(login="alice", password=PASSWORD)
    client.get("/auth/peerid/authorize/")
    planted = client.session.session_key
    response = post_json(client, PEERID_LOGIN, {"login": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert client.session.session_key != planted
    assert PEERID_SESSION_KEY in client.session


def test_signing_in_as_someone_else_starts_a_clean_session(client, fake_pi, fake_peerid):
    """A shared browser: the second person's sign-in keeps nothing of the first's session
    (no PeerID credential of the first person rides along)."""
    fake_peerid.add_user(login="alice", password=PASSWORD)
    post_json(client, PEERID_LOGIN, {"login": "alice", "password": PASSWORD})
    assert PEERID_SESSION_KEY in client.session
    post_json(client, PI_LOGIN, {"accessToken": fake_pi.issue_token(username="bob")})
    bob = Pioneer.objects.get(provider="pi").user
    assert client.session[SESSION_KEY] == str(bob.pk)
    assert PEERID_SESSION_KEY not in client.session

