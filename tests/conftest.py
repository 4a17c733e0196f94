import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import caches

pytest_plugins = ["django_piauth.testing.pytest_plugin"]


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture(autouse=True)
def _empty_caches():
    """Each test starts with no cached verdicts (tokens like "forged" recur)."""
    from django_piauth.verification import local_verdicts

    for cache in caches.all():
        cache.clear()
    local_verdicts.clear()
    yield


def services_configured() -> bool:
    """True in the pass scripts/test runs against its own PostgreSQL and Redis."""
    from django.conf import settings

    return (
        settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
        and settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    )


@pytest.fixture(autouse=True)
def _services_or_skip(request):
    """A ``services`` test needs PostgreSQL and Redis: under CI=true their absence fails."""
    if request.node.get_closest_marker("services") and not services_configured():
        message = ("needs PostgreSQL and Redis: run scripts/test, which starts them "
                   "(PIAUTH_TEST_DB=postgres PIAUTH_TEST_CACHE=redis)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def two_servers(live_fake_pi):
    """Two ``runserver`` processes on the test's database and the live fake Pi Platform;
    their base URLs."""
    from django.db import connection

    from tests.helpers import free_port, running, wait_until_it_answers

    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PIAUTH_TEST_USE_DB_NAME": connection.settings_dict["NAME"],
        "PIAUTH_TEST_PI_API_URL": live_fake_pi.url,
        "PYTHONPATH": str(root),
    }
    ports = [free_port(), free_port()]
    commands = [[sys.executable, "-m", "django", "runserver", "--noreload", "--skip-checks",
                 f"127.0.0.1:{port}"] for port in ports]
    with running(*commands, env=env, cwd=root, stdout=subprocess.DEVNULL,
                 stderr=subprocess.PIPE, text=True) as servers:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, server in zip(urls, servers, strict=True):
            wait_until_it_answers(f"{url}/api/whoami/", server)
        yield urls


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print how many browser steps, schema cases and property examples ran (tests/counts.py)."""
    from tests.counts import totals

    if totals:
        terminalreporter.section("what ran")
        for kind, n in sorted(totals.items()):
            terminalreporter.write_line(f"{kind}: {n}")
