"""The admin as an operator sees it."""

import pytest
from django.contrib.auth import authenticate, get_user_model

from django_piauth.models import Pioneer

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/django_piauth/pioneer/"


@pytest.fixture
def pioneers(fake_pi):
    for name in ("alice", "bob"):
        authenticate(None, pi_access_token=fake_pi.issue_token(username=name))
    return {p.username: p for p in Pioneer.objects.all()}


def test_changelist_lists_pioneers_with_their_columns(admin_client, pioneers):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    page = response.content.decode()
    for pioneer in pioneers.values():
        assert pioneer.uid in page
    for column in ("column-uid", "column-username", "column-provider", "column-user",
                   "column-created_at", "column-last_verified_at"):
        assert column in page


def test_search_by_uid_username_and_user(admin_client, pioneers):
    alice, bob = pioneers["alice"], pioneers["bob"]
    for term in (alice.uid, "alice", alice.user.username):
        response = admin_client.get(CHANGELIST, {"q": term})
        assert list(response.context["cl"].result_list) == [alice]
    response = admin_client.get(CHANGELIST, {"provider__exact": "pi"})
    assert set(response.context["cl"].result_list) == {alice, bob}


def test_no_add_and_identity_fields_are_read_only(admin_client, pioneers):
    assert admin_client.get(CHANGELIST + "add/").status_code == 403
    alice = pioneers["alice"]
    url = f"{CHANGELIST}{alice.pk}/change/"
    response = admin_client.get(url)
    assert response.status_code == 200
    admin_client.post(url, {"uid": "hijacked", "username": "mallory"})
    alice.refresh_from_db()
    assert (alice.uid, alice.username) != ("hijacked", "mallory")
    assert alice.username == "alice"


def test_user_page_shows_linked_pioneers(admin_client, pioneers):
    alice = pioneers["alice"]
    user_model = get_user_model()
    meta = user_model._meta
    url = f"/admin/{meta.app_label}/{meta.model_name}/{alice.user.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert alice.uid in page
    assert pioneers["bob"].uid not in page


@pytest.fixture
def viewer_client(client):
    """A staff user who may only view PeerID credentials."""
    from django.contrib.auth.models import Permission

    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_peeridcredential"))
    client.force_login(viewer)
    return client


def test_staff_who_may_only_view_credentials_cannot_revoke_them(viewer_client, fake_peerid):
    from django_piauth.models import PeerIDCredential

    user_id = fake_peerid.add_user(login="alice", password="pw")
    assert authenticate(None, peerid_login="alice", peerid_password="pw") is not None
    credential = PeerIDCredential.objects.get(pioneer__uid=str(user_id))
    url = "/admin/django_piauth/peeridcredential/"
    page = viewer_client.get(url)
    assert page.status_code == 200
    assert "revoke_credentials" not in page.content.decode()
    forged = viewer_client.post(url, {"action": "revoke_credentials",
                                      "_selected_action": [credential.pk]})
    assert forged.status_code in (200, 302)
    credential.refresh_from_db()
    assert credential.revoked_at is None
    assert fake_peerid.access_token_valid(credential.access_token)
