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


PEERID = {"PI_SERVER_API_KEY": "k", "PEERID_CLIENT_ID": 42}


@pytest.mark.parametrize(
    ("debug", "piauth", "expected"),
    [
        (False, {"PEERID_URL": "http://peerid.example"}, ["piauth.W014"]),
        (True, {"PEERID_URL": "http://peerid.example"}, []),
        (False, {"PEERID_URL": "https://peerid.example"}, []),
        (False, {"PEERID_URL": "http://127.0.0.1:8766"}, []),
        (False, {"PEERID_URL": "http://localhost:8766"}, []),
        (False, {"PEERID_REDIRECT_URI": "http://shop.example/auth/peerid/callback/"},
         ["piauth.W015"]),
        (False, {"PEERID_REDIRECT_URI": "https://shop.example/auth/peerid/callback/"}, []),
        (False, {"PEERID_REDIRECT_URI": "http://[::1]:8000/auth/peerid/callback/"}, []),
        (False, {"PEERID_URL": "http://peerid.example",
                 "PI_API_URL": "http://api.minepi.com"}, ["piauth.W004", "piauth.W014"]),
    ],
)
def test_plain_http_peerid_urls_outside_debug_are_deploy_warnings(debug, piauth, expected):
    with override_settings(DEBUG=debug, PIAUTH={**PEERID, **piauth}):
        messages = piauth_checks.check_https_upstream()
        assert ids(messages) == expected
        for message in messages:
            assert "would travel unencrypted" in message.msg
        deploy = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
        assert [i for i in ids(deploy) if i in {"piauth.W014", "piauth.W015"}] == [
            i for i in expected if i != "piauth.W004"]
        assert not {"piauth.W014", "piauth.W015"} & set(
            ids(checks.run_checks(tags=[checks.Tags.security])))


def test_plain_http_peerid_url_is_not_reported_when_peerid_is_not_used():
    with override_settings(DEBUG=False, PIAUTH={"PI_SERVER_API_KEY": "k",
                                                "PEERID_URL": "http://peerid.example"}):
        assert piauth_checks.check_https_upstream() == []


def test_the_peerid_url_warning_names_what_would_travel_in_clear():
    with override_settings(DEBUG=False, PIAUTH={**PEERID, "PEERID_URL": "http://p.example"}):
        [message] = piauth_checks.check_https_upstream()
    assert "PEERID_URL" in message.msg and "passwords" in message.msg
    assert "client secret" in message.msg


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


def _payment_settings(settings, **keys):
    settings.PIAUTH = {**settings.PIAUTH, **keys}
    if "PI_PAYMENT_HANDLER" not in keys:
        settings.PIAUTH.pop("PI_PAYMENT_HANDLER", None)


def test_payment_urls_with_the_default_handler_warn(settings):
    from django_piauth.checks_payments import check_payment_handler

    _payment_settings(settings)
    messages = check_payment_handler()
    assert ids(messages) == ["piauth.W051"]
    assert "approved" in messages[0].msg


def test_the_default_handler_without_a_server_api_key_is_fine(settings):
    """A site that only signs in (the quickstart) routes the payment URLs unused."""
    from django_piauth.checks_payments import check_payment_handler

    _payment_settings(settings, PI_SERVER_API_KEY=None)
    assert check_payment_handler() == []


def test_the_default_handler_without_payment_urls_is_fine(settings):
    from django_piauth.checks_payments import check_payment_handler

    _payment_settings(settings)
    settings.ROOT_URLCONF = "tests.urls_without_payments"
    assert check_payment_handler() == []


@pytest.mark.parametrize("handler", ["tests.testapp.no_such_module.Handler",
                                     "django_piauth.models.PiPayment"])
def test_a_handler_that_is_not_a_payment_handler_is_an_error(settings, handler):
    from django_piauth.checks_payments import check_payment_handler

    _payment_settings(settings, PI_PAYMENT_HANDLER=handler)
    messages = check_payment_handler()
    assert ids(messages) == ["piauth.E050"]
    assert handler in messages[0].msg
