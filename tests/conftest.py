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
    for cache in caches.all():
        cache.clear()
    yield
