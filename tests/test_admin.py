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
