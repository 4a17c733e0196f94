import pytest

pytest_plugins = ["django_piauth.testing.pytest_plugin"]


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()
