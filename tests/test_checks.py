import pytest
from django.core import checks
from django.test import override_settings

from django_piauth import checks as piauth_checks


def ids(messages):
    return sorted(m.id for m in messages)


@pytest.mark.django_db  # Django 6.1's checks may query the database
def test_default_test_settings_pass_all_checks():
    assert [m for m in checks.run_checks(include_deployment_checks=True)
            if m.id.startswith("piauth.")] == []


@override_settings(PIAUTH={"PI_API_ULR": "https://x"})
def test_misspelled_key_is_an_error():
    messages = piauth_checks.check_settings()
    assert ids(messages) == ["piauth.E001"]
    assert "PI_API_URL" in messages[0].msg


@override_settings(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"])
def test_missing_backend_is_a_warning():
    assert ids(piauth_checks.check_backends()) == ["piauth.W002"]


@override_settings(
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
    AUTHENTICATION_BACKENDS=["django_piauth.backends.PiBackend"],
)
def test_backend_listed_without_the_app_installed():
    messages = piauth_checks.check_app_installed()
    assert ids(messages) == ["piauth.E003"]
    assert "INSTALLED_APPS" in messages[0].msg
    from django.core.exceptions import ImproperlyConfigured

    from django_piauth.backends import PiBackend

    with pytest.raises(ImproperlyConfigured, match="INSTALLED_APPS"):
        PiBackend()


@pytest.mark.parametrize(
    ("debug", "url", "expected"),
    [
        (False, "http://api.minepi.com", ["piauth.W004"]),
        (True, "http://api.minepi.com", []),
        (False, "https://api.minepi.com", []),
        (False, "http://127.0.0.1:8765", []),
    ],
)
def test_plain_http_upstream_outside_debug_is_a_deploy_warning(debug, url, expected):
    with override_settings(DEBUG=debug, PIAUTH={"PI_API_URL": url, "PI_SERVER_API_KEY": "k"}):
        assert ids(piauth_checks.check_https_upstream()) == expected
        deploy = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
        assert ("piauth.W004" in ids(deploy)) == bool(expected)
        assert "piauth.W004" not in ids(checks.run_checks(tags=[checks.Tags.security]))


def test_server_api_key_checks():
    with override_settings(PIAUTH={}):
        assert ids(piauth_checks.check_server_api_key()) == ["piauth.W006"]
    with override_settings(PIAUTH={"PI_SERVER_API_KEY": "  "}):
        assert ids(piauth_checks.check_server_api_key()) == ["piauth.E005"]
    with override_settings(PIAUTH={"PI_SERVER_API_KEY": "real-key"}):
        assert piauth_checks.check_server_api_key() == []


def test_token_cache_checks(settings):
    assert piauth_checks.check_token_cache() == []
    settings.PIAUTH = {**settings.PIAUTH, "CACHE_ALIAS": "tokens"}
    assert ids(piauth_checks.check_token_cache()) == ["piauth.E007"]
    settings.CACHES = {**settings.CACHES, "tokens": {
        "BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    assert ids(piauth_checks.check_token_cache()) == ["piauth.W008"]
