"""The SAFE system checks (django_piauth/checks_safe.py)."""

from datetime import timedelta

import pytest
from django.core import checks
from django.test import override_settings
from django.utils import timezone

from django_piauth import checks_safe
from django_piauth.models import SafeGrant

APP = {"name": "Shop", "id": "com.example.shop", "version": "1.0", "vendor": "Example"}


def ids(messages):
    return sorted(m.id for m in messages)


def piauth_ids(**kwargs):
    return ids(m for m in checks.run_checks(**kwargs) if m.id.startswith("piauth.E04")
               or m.id.startswith("piauth.W04"))


def test_nothing_to_check_while_safe_is_not_used():
    with override_settings(PIAUTH={}):
        assert checks_safe.check_safe_settings() == []
        assert checks_safe.check_safe_launcher_url() == []


def test_a_complete_app_passes():
    with override_settings(PIAUTH={"SAFE_APP": APP, "SAFE_PERMISSIONS": ["SAFE_DRIVE_ACCESS",
                                                                        "LOW_LEVEL_API"]}):
        assert checks_safe.check_safe_settings() == []
    with override_settings(PIAUTH={"SAFE_APP": APP}):  # no permissions: the app folder only
        assert checks_safe.check_safe_settings() == []


@pytest.mark.parametrize(
    ("app", "wanted"),
    [
        ({k: v for k, v in APP.items() if k != "vendor"}, "'vendor' is missing"),
        ({**APP, "id": ""}, "'id' must be a non-empty string"),
        ({**APP, "version": 1}, "'version' must be a non-empty string"),
        ({**APP, "vender": "x"}, "unknown key(s) 'vender'"),
    ],
)
def test_missing_app_fields_are_an_error(app, wanted):
    with override_settings(PIAUTH={"SAFE_APP": app}):
        [message] = checks_safe.check_safe_settings()
        assert message.id == "piauth.E040" and message.level == checks.ERROR
        assert wanted in message.msg
        assert "data" in message.hint  # id and vendor are chosen once
        assert piauth_ids() == ["piauth.E040"]


def test_permissions_without_an_app_are_an_error():
    with override_settings(PIAUTH={"SAFE_PERMISSIONS": ["SAFE_DRIVE_ACCESS"]}):
        assert ids(checks_safe.check_safe_settings()) == ["piauth.E040"]


def test_unknown_permissions_are_an_error():
    with override_settings(PIAUTH={"SAFE_APP": APP,
                                   "SAFE_PERMISSIONS": ["SAFE_DRIVE_ACCESS", "NFS", "NFS"]}):
        [message] = checks_safe.check_safe_settings()
        assert message.id == "piauth.E041"
        assert "'NFS'" in message.msg and message.msg.count("NFS") == 1
        assert "SAFE_DRIVE_ACCESS" in message.hint and "LOW_LEVEL_API" in message.hint


def test_a_wrong_type_is_left_to_e001():
    with override_settings(PIAUTH={"SAFE_APP": "com.example.shop"}):
        assert checks_safe.check_safe_settings() == []
        assert "piauth.E001" in ids(checks.run_checks())


@pytest.mark.django_db
def test_changing_id_or_vendor_is_a_warning_until_authorized_again():
    def grant(app_id, vendor, minutes_ago):
        SafeGrant.objects.create(
            launcher_url="http://localhost:8100", app_id=app_id, app_name="Shop",
            app_version="1.0", app_vendor=vendor, token="a.b.c",
            authorized_at=timezone.now() - timedelta(minutes=minutes_ago))

    with override_settings(PIAUTH={"SAFE_APP": APP}):
        check = checks_safe.check_safe_app_identity
        assert check(databases=["default"]) == []  # nothing authorized yet
        grant("com.example.shop", "Example", 10)
        assert check(databases=["default"]) == []

    moved = {**APP, "id": "com.example.store"}
    with override_settings(PIAUTH={"SAFE_APP": moved}):
        [message] = check(databases=["default"])
        assert message.id == "piauth.W042" and message.level == checks.WARNING
        assert "'com.example.shop'" in message.msg and "'com.example.store'" in message.msg
        assert "data" in message.msg
        assert "piauth_safe_authorize" in message.hint
        # A database check: only when databases are checked (migrate, check --database).
        assert check() == []
        assert "piauth.W042" not in piauth_ids()
        assert "piauth.W042" in piauth_ids(databases=["default"])
        # Another Launcher keeps other apps: no warning.
        with override_settings(PIAUTH={"SAFE_APP": moved,
                                       "SAFE_LAUNCHER_URL": "http://127.0.0.1:9999"}):
            assert check(databases=["default"]) == []
        grant("com.example.store", "Example", 1)  # authorized under the new pair
        assert check(databases=["default"]) == []


@pytest.mark.parametrize(
    ("debug", "url", "expected"),
    [
        (False, "http://launcher.internal:8100", ["piauth.W043"]),
        (True, "http://launcher.internal:8100", []),
        (False, "https://launcher.internal", []),
        (False, "http://localhost:8100", []),
        (False, "http://127.0.0.1:8100", []),
    ],
)
def test_plain_http_launcher_on_another_host_is_a_deploy_warning(debug, url, expected):
    with override_settings(DEBUG=debug, PIAUTH={"SAFE_APP": APP, "SAFE_LAUNCHER_URL": url}):
        assert ids(checks_safe.check_safe_launcher_url()) == expected
        deploy = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
        assert ("piauth.W043" in ids(deploy)) == bool(expected)
        assert "piauth.W043" not in ids(checks.run_checks(tags=[checks.Tags.security]))
