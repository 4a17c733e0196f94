import os

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
