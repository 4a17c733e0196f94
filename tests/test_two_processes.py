"""Two server processes sharing PostgreSQL and Redis: one fresh token, 40 concurrent
requests spread over both, one upstream call and one Pioneer."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection

from django_piauth.models import Pioneer

pytestmark = [pytest.mark.services, pytest.mark.live, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", "--noreload", "--skip-checks",
             f"127.0.0.1:{port}"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, server in zip(urls, servers, strict=True):
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, server.stderr.read()
                try:
                    requests.get(f"{url}/api/whoami/", timeout=1)
                    break
                except requests.ConnectionError:
                    assert time.monotonic() < deadline, f"{url} never answered"
                    time.sleep(0.1)
        yield urls
    finally:
        for server in servers:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
            server.stderr.close()


def test_forty_concurrent_requests_over_two_processes_make_one_upstream_call(
        two_servers, live_fake_pi):
    live_fake_pi.delay(0.1)  # every request arrives while the one call is in flight
    token = live_fake_pi.issue_token(username="alice")
    barrier = threading.Barrier(40)

    def one_request(index):
        with requests.Session() as session:
            barrier.wait(timeout=10)
            response = session.get(f"{two_servers[index % 2]}/api/whoami/",
                                   headers={"Authorization": f"Bearer {token}"}, timeout=30)
        return response.status_code, response.json().get("uid")

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(one_request, range(40)))

    assert results == [(200, live_fake_pi.uid_for("alice"))] * 40
    assert live_fake_pi.call_count("/v2/me") == 1
    assert Pioneer.objects.count() == 1
    assert get_user_model().objects.count() == 1
