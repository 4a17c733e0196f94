"""Two server processes sharing PostgreSQL and Redis: one fresh token, 40 concurrent
requests spread over both, one upstream call and one Pioneer."""

import pytest
import requests
from django.contrib.auth import get_user_model

from django_piauth.models import Pioneer
from tests.helpers import all_at_once

pytestmark = [pytest.mark.services, pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_forty_concurrent_requests_over_two_processes_make_one_upstream_call(
        two_servers, live_fake_pi):
    live_fake_pi.delay(0.1)  # every request arrives while the one call is in flight
    token = live_fake_pi.issue_token(username="alice")

    def one_request(index):
        response = requests.get(f"{two_servers[index % 2]}/api/whoami/",
                                headers={"Authorization": f"Bearer {token}"}, timeout=30)
        return response.status_code, response.json().get("uid")

    results = all_at_once(one_request, range(40))

    assert results == [(200, live_fake_pi.uid_for("alice"))] * 40
    assert live_fake_pi.call_count("/v2/me") == 1
    assert Pioneer.objects.count() == 1
    assert get_user_model().objects.count() == 1
