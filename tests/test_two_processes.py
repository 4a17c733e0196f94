"""Two server processes sharing PostgreSQL and Redis: one fresh token, 40 concurrent
requests spread over both, one upstream call and one Pioneer."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection

from django_piauth.models import Pioneer
from tests.helpers import all_at_once, free_port, running, wait_until_it_answers

pytestmark = [pytest.mark.services, pytest.mark.live, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def two_servers(live_fake_pi):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PIAUTH_TEST_USE_DB_NAME": connection.settings_dict["NAME"],
        "PIAUTH_TEST_PI_API_URL": live_fake_pi.url,
        "PYTHONPATH": str(ROOT),
    }
    ports = [free_port(), free_port()]
    commands = [[sys.executable, "-m", "django", "runserver", "--noreload", "--skip-checks",
                 f"127.0.0.1:{port}"] for port in ports]
    with running(*commands, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                 stderr=subprocess.PIPE, text=True) as servers:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, server in zip(urls, servers, strict=True):
            wait_until_it_answers(f"{url}/api/whoami/", server)
        yield urls


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
