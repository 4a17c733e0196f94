"""The shipped fixtures isolate a user's tests: run as a user's own suite would be (their
conftest loads only the plugin; nothing of this project's conftest), two tests sending the
same token each see their own upstream call."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent

USER_TESTS = '''
import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("run", [1, 2])
def test_a_rejected_token_asks_upstream_in_each_test(fake_pi, run):
    response = APIClient().get("/api/whoami/", HTTP_AUTHORIZATION="Bearer same-token")
    assert response.status_code == 401
    assert fake_pi.call_count("/v2/me") == 1


@pytest.mark.parametrize("run", [1, 2])
def test_a_verified_token_asks_upstream_in_each_test(fake_pi, run):
    token = "same-verified-token"
    fake_pi._grants[token] = fake_pi._grants[fake_pi.issue_token(username="alice")]
    response = APIClient().get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert fake_pi.call_count("/v2/me") == 1


def test_piauth_reset_alone(fake_pi):
    from django_piauth.testing import piauth_reset

    client = APIClient()
    for _ in range(2):
        assert client.get("/api/whoami/", HTTP_AUTHORIZATION="Bearer x").status_code == 401
    assert fake_pi.call_count("/v2/me") == 1  # the second answer came from the cache
    piauth_reset()
    assert client.get("/api/whoami/", HTTP_AUTHORIZATION="Bearer x").status_code == 401
    assert fake_pi.call_count("/v2/me") == 2
'''


@pytest.mark.parametrize("cache", ["locmem", pytest.param("redis", marks=pytest.mark.services)])
def test_two_user_tests_with_one_token_each_see_their_own_call(pytester, cache):
    pytester.makeconftest('pytest_plugins = ["django_piauth.testing.pytest_plugin"]\n')
    pytester.makeini("[pytest]\nDJANGO_SETTINGS_MODULE = tests.settings\n")
    pytester.makepyfile(test_user=USER_TESTS)
    env = {"PYTHONPATH": str(ROOT), "PIAUTH_TEST_CACHE": "redis" if cache == "redis" else "",
           "PIAUTH_TEST_DB": "", "PIAUTH_TEST_DB_DIR": str(pytester.path)}
    for name, value in env.items():
        pytester._monkeypatch.setenv(name, value)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=5)


def test_the_payouts_pages_test_passes_as_written(pytester):
    """docs/howto/payouts.md's test, run in a user's suite with only the plugin."""
    import re

    page = (ROOT / "docs" / "howto" / "payouts.md").read_text()
    body = re.search(r'```python title="test_rewards.py"\n(.*?)```', page, re.S)[1]
    pytester.makeconftest('pytest_plugins = ["django_piauth.testing.pytest_plugin"]\n')
    pytester.makeini("[pytest]\nDJANGO_SETTINGS_MODULE = tests.settings\n")
    pytester.makepyfile(test_rewards=body)
    for name, value in {"PYTHONPATH": str(ROOT), "PIAUTH_TEST_CACHE": "",
                        "PIAUTH_TEST_DB": "", "PIAUTH_TEST_DB_DIR": str(pytester.path)}.items():
        pytester._monkeypatch.setenv(name, value)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
