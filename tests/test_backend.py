"""PiBackend: the uid -> User mapping, its hooks and its signals."""

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.test import override_settings

from django_piauth.backends import PiBackend
from django_piauth.exceptions import UpstreamUnavailable
from django_piauth.models import Pioneer
from django_piauth.signals import pioneer_authenticated, pioneer_created

User = get_user_model()
pytestmark = pytest.mark.django_db


def test_new_uid_creates_one_user_and_one_pioneer(fake_pi):
    token = fake_pi.issue_token(username="alice")
    user = authenticate(None, pi_access_token=token)
    assert user is not None
    assert user.username == "alice"
    assert not user.has_usable_password()
    pioneer = Pioneer.objects.get()
    assert (pioneer.user, pioneer.provider, pioneer.username) == (user, "pi", "alice")
    assert pioneer.uid == fake_pi.uid_for("alice")
    assert pioneer.scopes == ["username", "payments"]
    assert pioneer.last_verified_at is not None
    assert fake_pi.call_count("/v2/me") == 1


def test_second_sign_in_finds_the_same_user(fake_pi):
    first = authenticate(None, pi_access_token=fake_pi.issue_token(username="alice"))
    second = authenticate(None, pi_access_token=fake_pi.issue_token(username="alice"))
    assert first == second
    assert User.objects.count() == 1
    assert Pioneer.objects.count() == 1


def test_taken_username_is_made_unique(fake_pi):
    User.objects.create_user("alice", password="x")
    User.objects.create_user("alice-2", password="x")
    user = authenticate(None, pi_access_token=fake_pi.issue_token(username="Alice"))
    assert user.username == "Alice-3"
    assert Pioneer.objects.get().username == "Alice"


def test_identity_without_username_gets_a_uid_based_name(fake_pi):
    token = fake_pi.issue_token(username="carol", scopes=("payments",))
    user = authenticate(None, pi_access_token=token)
    assert user.username == f"pi-{fake_pi.uid_for('carol')[:12]}"
    assert Pioneer.objects.get().username == ""


def test_username_change_upstream_updates_the_pioneer(fake_pi):
    token = fake_pi.issue_token(username="alice")
    user = authenticate(None, pi_access_token=token)
    fake_pi.rename(fake_pi.uid_for("alice"), "alice_new")
    assert authenticate(None, pi_access_token=token) == user  # cached: nothing changes
    assert Pioneer.objects.get().username == "alice"
    assert authenticate(None, pi_access_token=fake_pi.issue_token(username="alice_new")) == user
    assert Pioneer.objects.get().username == "alice_new"
    user.refresh_from_db()
    assert user.username == "alice"  # the Django username is the project's, not upstream's


def test_rejected_token_returns_none_and_creates_nobody(fake_pi):
    assert authenticate(None, pi_access_token="not-a-real-token") is None
    assert not User.objects.exists()
    assert fake_pi.call_count("/v2/me") == 1


def test_malformed_token_returns_none_without_an_upstream_call(fake_pi):
    assert authenticate(None, pi_access_token="has space") is None
    assert authenticate(None, pi_access_token="x" * 5000) is None
    assert fake_pi.call_count("/v2/me") == 0


def test_outage_raises_rather_than_guessing(fake_pi):
    fake_pi.fail_with(503)
    with pytest.raises(UpstreamUnavailable):
        authenticate(None, pi_access_token=fake_pi.issue_token(username="alice"))
    assert not User.objects.exists()


def test_inactive_user_is_refused(fake_pi):
    token = fake_pi.issue_token(username="alice")
    user = authenticate(None, pi_access_token=token)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert authenticate(None, pi_access_token=token) is None


def test_calls_without_the_keyword_are_left_to_other_backends(fake_pi):
    User.objects.create_user("dave", password="pw")
    assert authenticate(None, username="dave", password="pw").username == "dave"
    assert PiBackend().authenticate(None, username="dave", password="pw") is None
    assert fake_pi.call_count("/v2/me") == 0


@override_settings(PIAUTH={"PI_API_URL": "https://api.minepi.example",
                           "PI_REQUIRED_SCOPES": ["payments"]})
def test_required_scopes_refuse_identities_without_them(fake_pi):
    assert authenticate(None, pi_access_token=fake_pi.issue_token(
        username="alice", scopes=("username",))) is None
    assert authenticate(None, pi_access_token=fake_pi.issue_token(
        username="bob", scopes=("username", "payments"))) is not None
    assert list(Pioneer.objects.values_list("username", flat=True)) == ["bob"]


class StaffOnlyWithPayments(PiBackend):
    def verify_identity(self, identity):
        return "payments" in identity.scopes

    def create_user(self, identity):
        user = super().create_user(identity)
        user.first_name = "Pioneer"
        user.save(update_fields=["first_name"])
        return user

    def update_user(self, user, identity):
        user.last_name = identity.username or ""
        user.save(update_fields=["last_name"])
        return user


@override_settings(AUTHENTICATION_BACKENDS=["tests.test_backend.StaffOnlyWithPayments"])
def test_hooks_are_the_extension_points(fake_pi):
    assert authenticate(None, pi_access_token=fake_pi.issue_token(
        username="nopay", scopes=("username",))) is None
    user = authenticate(None, pi_access_token=fake_pi.issue_token(username="alice"))
    assert user.first_name == "Pioneer"
    assert user.last_name == ""
    user = authenticate(None, pi_access_token=fake_pi.issue_token(username="alice"))
    assert user.last_name == "alice"


def test_signals(fake_pi):
    created, authenticated = [], []

    def on_created(sender, pioneer, identity, request, **kwargs):
        created.append((sender, pioneer.uid, identity.username))

    def on_authenticated(sender, pioneer, identity, request, **kwargs):
        authenticated.append(pioneer.uid)

    pioneer_created.connect(on_created)
    pioneer_authenticated.connect(on_authenticated)
    try:
        token = fake_pi.issue_token(username="alice")
        authenticate(None, pi_access_token=token)
        authenticate(None, pi_access_token=token)  # cached: no upstream verdict, no signal
        authenticate(None, pi_access_token=fake_pi.issue_token(username="alice"))
        authenticate(None, pi_access_token="rejected-token")
    finally:
        pioneer_created.disconnect(on_created)
        pioneer_authenticated.disconnect(on_authenticated)
    uid = fake_pi.uid_for("alice")
    assert created == [(PiBackend, uid, "alice")]
    assert authenticated == [uid, uid]


def test_deleting_a_user_deletes_its_pioneers(fake_pi):
    user = authenticate(None, pi_access_token=fake_pi.issue_token(username="alice"))
    user.delete()
    assert not Pioneer.objects.exists()


def test_get_user_refuses_inactive_users(fake_pi):
    user = authenticate(None, pi_access_token=fake_pi.issue_token(username="alice"))
    backend = PiBackend()
    assert backend.get_user(user.pk) == user
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert backend.get_user(user.pk) is None
    assert backend.get_user(999999) is None


LONG = "x" * 149 + "-" + "y" * 80  # 230 characters; Pioneer.username holds 150


def test_an_upstream_username_longer_than_the_column_is_stored_cut(client, fake_pi):
    """PostgreSQL refuses a value longer than the column (a DataError, a 500); SQLite
    keeps it whole. Either way the stored username fits, at creation and on update."""
    import json

    response = client.post("/auth/pi/login/", json.dumps(
        {"accessToken": fake_pi.issue_token(username=LONG)}), content_type="application/json")
    assert response.status_code == 200
    pioneer = Pioneer.objects.get()
    assert pioneer.username == LONG[:150]
    assert len(pioneer.user.username) <= 150
    renamed = "z" * 300
    fake_pi.rename(pioneer.uid, renamed)
    response = client.post("/auth/pi/login/", json.dumps(
        {"accessToken": fake_pi.issue_token(username=renamed)}),
        content_type="application/json")
    assert response.status_code == 200
    assert Pioneer.objects.get().username == renamed[:150]


def test_a_peerid_login_longer_than_the_column_is_stored_cut(client, fake_peerid):
    import json

    fake_peerid.add_user(login=LONG, password="pw")
    response = client.post("/auth/peerid/login/", json.dumps(
        {"login": LONG, "password": "pw"}), content_type="application/json")
    assert response.status_code == 200
    pioneer = Pioneer.objects.get()
    assert pioneer.username == LONG[:150]
    assert len(pioneer.user.username) <= 150
