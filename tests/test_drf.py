"""PiAuthentication as a DRF client sees it: status codes, headers, upstream calls."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authentication import BasicAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from django_piauth.drf import PiAuthentication
from django_piauth.models import Pioneer

pytestmark = pytest.mark.django_db
URL = "/api/whoami/"


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_valid_token_authenticates_and_request_auth_is_the_identity(api_client, fake_pi):
    token = fake_pi.issue_token(username="alice")
    response = api_client.get(URL, **bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "user": "alice",
        "uid": fake_pi.uid_for("alice"),
        "username": "alice",
        "scopes": ["username", "payments"],
        "auth_type": "PiIdentity",
    }
    assert token not in str(response.json())
    assert Pioneer.objects.count() == 1
    assert fake_pi.call_count("/v2/me") == 1


def test_scheme_is_case_insensitive(api_client, fake_pi):
    token = fake_pi.issue_token(username="alice")
    assert api_client.get(URL, HTTP_AUTHORIZATION=f"bearer {token}").status_code == 200


def test_rejected_token_is_401_with_www_authenticate(api_client, fake_pi):
    response = api_client.get(URL, **bearer("unknown-token"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["detail"] == "Invalid or expired access token."
    assert fake_pi.call_count("/v2/me") == 1
    assert not get_user_model().objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer two parts",
        "Bearer " + "a" * 4097,
        "Bearer tök".encode().decode("latin-1"),
        "Bearer tab\tinside",
        "Bearer \x00nul",
    ],
)
def test_malformed_tokens_are_401_without_any_upstream_call(api_client, fake_pi, header):
    response = api_client.get(URL, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert fake_pi.call_count("/v2/me") == 0


def test_token_of_exactly_the_limit_is_accepted_for_verification(api_client, fake_pi):
    response = api_client.get(URL, **bearer("a" * 4096))
    assert response.status_code == 401  # unknown upstream, but it was asked
    assert fake_pi.call_count("/v2/me") == 1


@pytest.mark.parametrize("failure", ["500", "503", "garbage", "dropped"])
def test_outage_is_503_with_retry_after_and_no_user(api_client, fake_pi, failure):
    token = fake_pi.issue_token(username="alice")
    if failure == "garbage":
        fake_pi.garbage()
    elif failure == "dropped":
        fake_pi.drop_connection()
    else:
        fake_pi.fail_with(int(failure))
    response = api_client.get(URL, **bearer(token))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert not get_user_model().objects.exists()


def test_other_schemes_are_left_to_other_classes(fake_pi):
    class View(APIView):
        authentication_classes = [PiAuthentication, BasicAuthentication]
        permission_classes = [IsAuthenticated]

        def get(self, request):
            return Response({"user": request.user.get_username()})

    get_user_model().objects.create_user("dave", password="pw")
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION="Basic ZGF2ZTpwdw==")
    response = View.as_view()(request)
    assert response.status_code == 200
    assert response.data == {"user": "dave"}
    assert fake_pi.call_count("/v2/me") == 0


def test_no_header_is_unauthenticated_401(api_client, fake_pi):
    response = api_client.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert fake_pi.call_count("/v2/me") == 0


def test_inactive_user_is_401(api_client, fake_pi):
    token = fake_pi.issue_token(username="alice")
    assert api_client.get(URL, **bearer(token)).status_code == 200
    get_user_model().objects.update(is_active=False)
    response = api_client.get(URL, **bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "User inactive or deleted."
