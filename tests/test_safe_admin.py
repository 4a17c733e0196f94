"""The SAFE grant in the admin: read-only, and the token never on a page."""

import pytest
from django.db import connection

from django_piauth.models import SafeGrant
from django_piauth.safe import authorize_and_store

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/django_piauth/safegrant/"
APP = {"name": "Shop", "id": "com.example.shop", "version": "1.0", "vendor": "Example"}


@pytest.fixture
def grant(fake_safe, settings):
    settings.PIAUTH = {**settings.PIAUTH, "SAFE_APP": APP,
                       "SAFE_PERMISSIONS": ["SAFE_DRIVE_ACCESS"]}
    return authorize_and_store()


def stored_ciphertext():
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM django_piauth_safegrant")
        return cursor.fetchone()[0]


def test_changelist_shows_the_grant_but_not_the_token(admin_client, grant):
    page = admin_client.get(CHANGELIST).content.decode()
    for column in ("column-app_name", "column-app_id", "column-app_vendor", "column-launcher_url",
                   "column-permissions_granted", "column-authorized_at",
                   "column-last_checked_at", "column-is_valid"):
        assert column in page
    assert "com.example.shop" in page and "SAFE_DRIVE_ACCESS" in page
    assert grant.token not in page
    assert stored_ciphertext() not in page


def test_detail_page_is_read_only_without_the_token(admin_client, grant):
    url = f"{CHANGELIST}{grant.pk}/change/"
    response = admin_client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "com.example.shop" in page
    assert grant.token not in page and stored_ciphertext() not in page
    assert 'name="token"' not in page and 'name="app_id"' not in page
    admin_client.post(url, {"app_id": "hijacked", "is_valid": ""})
    assert SafeGrant.objects.get().app_id == "com.example.shop"


def test_no_add_no_change_no_delete(admin_client, grant):
    assert admin_client.get(CHANGELIST + "add/").status_code == 403
    assert admin_client.post(f"{CHANGELIST}{grant.pk}/delete/", {"post": "yes"}).status_code \
        == 403
    response = admin_client.post(CHANGELIST, {"action": "delete_selected",
                                              "_selected_action": [grant.pk], "post": "yes"})
    assert response.status_code in (200, 302)
    assert SafeGrant.objects.count() == 1


def test_search_and_filter(admin_client, grant):
    response = admin_client.get(CHANGELIST, {"q": "Example"})
    assert list(response.context["cl"].result_list) == [grant]
    response = admin_client.get(CHANGELIST, {"is_valid__exact": "0"})
    assert list(response.context["cl"].result_list) == []
