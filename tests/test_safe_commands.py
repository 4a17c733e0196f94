"""The SAFE Launcher feature end to end, against the fake Launcher on a loopback port:
the three commands, the grant they keep, and the authorised-request helper."""

import logging
import socket
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from django_piauth import crypto
from django_piauth.exceptions import SafeGrantDead, SafeNotAuthorized
from django_piauth.models import SafeGrant
from django_piauth.safe import authorized_request, get_token

pytestmark = [pytest.mark.django_db, pytest.mark.live]

APP = {"name": "Shop", "id": "com.example.shop", "version": "1.0", "vendor": "Example"}


@pytest.fixture
def launcher(live_fake_safe, settings):
    """The loopback fake Launcher, with this project configured as the SAFE app."""
    settings.PIAUTH = {**settings.PIAUTH, "SAFE_APP": dict(APP),
                       "SAFE_PERMISSIONS": ["SAFE_DRIVE_ACCESS"]}
    return live_fake_safe


def configure(settings, **values):
    settings.PIAUTH = {**settings.PIAUTH, **values}


class Run:
    """call_command with captured output; every run's output is kept for the log test."""

    def __init__(self):
        self.outputs = []

    def __call__(self, name, *args):
        out, err = StringIO(), StringIO()
        try:
            call_command(name, *args, stdout=out, stderr=err)
        except CommandError as exc:
            self.outputs.append(out.getvalue() + err.getvalue() + str(exc))
            exc.out, exc.err = out.getvalue(), err.getvalue()
            raise
        self.outputs.append(out.getvalue() + err.getvalue())
        return out.getvalue(), err.getvalue()


@pytest.fixture
def run():
    return Run()


def raw_rows():
    with connection.cursor() as cursor:
        cursor.execute("SELECT token, permissions_granted, is_valid FROM django_piauth_safegrant")
        return cursor.fetchall()


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# authorize -------------------------------------------------------------------------------

def test_authorize_stores_an_encrypted_token_and_the_granted_permissions(launcher, run):
    out, _err = run("piauth_safe_authorize")
    assert "Allow it at the Launcher" in out
    assert "Authorized" in out and "SAFE_DRIVE_ACCESS" in out
    assert launcher.call_count("/auth", "POST") == 1
    [authorization] = launcher.authorizations
    assert authorization.app == APP
    assert authorization.permissions_requested == ["SAFE_DRIVE_ACCESS"]

    grant = SafeGrant.objects.get()
    token = grant.token
    assert launcher.token_valid(token)
    assert token.count(".") == 2  # JWT-looking
    assert (grant.launcher_url, grant.app_id, grant.app_vendor, grant.app_name,
            grant.app_version) == (launcher.url, "com.example.shop", "Example", "Shop", "1.0")
    assert grant.permissions_requested == ["SAFE_DRIVE_ACCESS"]
    assert grant.permissions_granted == ["SAFE_DRIVE_ACCESS"]
    assert grant.is_valid and grant.authorized_at and grant.last_checked_at
    assert grant.invalidated_at is None

    # The raw row: ciphertext only, which the configured keys open.
    [(stored, granted, is_valid)] = raw_rows()
    assert token not in stored and stored != token
    assert crypto.decrypt(stored) == token
    assert "SAFE_DRIVE_ACCESS" in granted and is_valid
    assert token not in out


def test_permissions_granted_are_what_the_launcher_answered(launcher, settings, run):
    configure(settings, SAFE_PERMISSIONS=["SAFE_DRIVE_ACCESS", "LOW_LEVEL_API"])
    launcher.approve(permissions=["SAFE_DRIVE_ACCESS"])
    _out, err = run("piauth_safe_authorize")
    grant = SafeGrant.objects.get()
    assert grant.permissions_requested == ["SAFE_DRIVE_ACCESS", "LOW_LEVEL_API"]
    assert grant.permissions_granted == ["SAFE_DRIVE_ACCESS"]
    assert "did not grant LOW_LEVEL_API" in err


def test_denial_stores_nothing_and_exits_non_zero(launcher, run):
    launcher.deny()
    with pytest.raises(CommandError) as denied:
        run("piauth_safe_authorize")
    assert denied.value.returncode != 0
    assert "denied at the SAFE Launcher" in str(denied.value)
    assert "Nothing was stored" in str(denied.value)
    assert SafeGrant.objects.count() == 0
    assert raw_rows() == []
    assert launcher.live_tokens == 0


def test_denial_leaves_an_existing_grant_as_it_was(launcher, run):
    run("piauth_safe_authorize")
    before = SafeGrant.objects.get()
    launcher.deny()
    with pytest.raises(CommandError, match="denied"):
        run("piauth_safe_authorize", "--force")
    after = SafeGrant.objects.get()
    assert (after.token, after.authorized_at, after.is_valid) == (
        before.token, before.authorized_at, True)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"SAFE_PERMISSIONS": ["SAFE_DRIVE_ACCESS", "NFS_EVERYTHING"]}, "'NFS_EVERYTHING'"),
        ({"SAFE_PERMISSIONS": ["safe_drive_access"]}, "'safe_drive_access'"),
        ({"SAFE_APP": {**APP, "vendor": ""}}, "'vendor'"),
        ({"SAFE_APP": {"name": "Shop", "id": "com.example.shop", "version": "1"}},
         "'vendor' is missing"),
        ({"SAFE_APP": None}, "SAFE_APP"),
    ],
)
def test_bad_settings_are_refused_before_any_request(launcher, settings, run, values, named):
    configure(settings, **values)
    with pytest.raises(CommandError) as refused:
        run("piauth_safe_authorize")
    assert named in str(refused.value)
    assert "Nothing was sent" in str(refused.value)
    assert launcher.calls == []
    assert SafeGrant.objects.count() == 0


def test_a_valid_grant_is_kept_unless_forced(launcher, settings, run):
    run("piauth_safe_authorize")
    first = SafeGrant.objects.get().token
    out, _err = run("piauth_safe_authorize")
    assert "Already authorized" in out
    assert launcher.call_count("/auth", "POST") == 1
    assert launcher.call_count("/auth", "GET") == 1
    assert SafeGrant.objects.get().token == first

    run("piauth_safe_authorize", "--force")
    assert launcher.call_count("/auth", "POST") == 2
    assert SafeGrant.objects.get().token != first

    # Other permissions in the settings: asked again without --force.
    configure(settings, SAFE_PERMISSIONS=["SAFE_DRIVE_ACCESS", "LOW_LEVEL_API"])
    run("piauth_safe_authorize")
    assert launcher.call_count("/auth", "POST") == 3
    assert SafeGrant.objects.get().permissions_granted == ["SAFE_DRIVE_ACCESS", "LOW_LEVEL_API"]


def test_a_dead_grant_is_authorized_again(launcher, run):
    run("piauth_safe_authorize")
    launcher.restart()
    out, _err = run("piauth_safe_authorize")
    assert "dead" in out and "Authorized" in out
    grant = SafeGrant.objects.get()
    assert grant.is_valid and grant.invalidated_at is None
    assert launcher.token_valid(grant.token)


def test_the_person_may_take_a_while(launcher, run):
    launcher.slow_answer(0.3)
    run("piauth_safe_authorize")
    assert SafeGrant.objects.get().is_valid


def test_nobody_answering_in_time_stores_nothing(launcher, settings, run):
    launcher.slow_answer(1.5)
    with pytest.raises(CommandError) as late:
        run("piauth_safe_authorize", "--timeout", "0.3")
    assert "nobody answered" in str(late.value) and "0.3 s" in str(late.value)
    assert SafeGrant.objects.count() == 0

    configure(settings, SAFE_AUTHORIZE_TIMEOUT=0.3)
    launcher.slow_answer(1.5)
    with pytest.raises(CommandError, match=r"within 0\.3 s"):
        run("piauth_safe_authorize")
    assert SafeGrant.objects.count() == 0


def test_no_launcher_is_said_clearly(settings, run):
    url = closed_port_url()
    configure(settings, SAFE_APP=dict(APP), SAFE_PERMISSIONS=["SAFE_DRIVE_ACCESS"],
              SAFE_LAUNCHER_URL=url)
    with pytest.raises(CommandError) as missing:
        run("piauth_safe_authorize")
    assert f"no SAFE Launcher at {url}" in str(missing.value)
    assert SafeGrant.objects.count() == 0


def test_the_launchers_validation_error_is_shown(launcher, settings, run):
    launcher.known_permissions = ("SAFE_DRIVE_ACCESS",)  # an older Launcher
    configure(settings, SAFE_PERMISSIONS=["LOW_LEVEL_API"])
    with pytest.raises(CommandError) as refused:
        run("piauth_safe_authorize")
    assert "refused the authorization request: Invalid permissions" in str(refused.value)
    assert SafeGrant.objects.count() == 0


def test_changing_id_or_vendor_warns_about_the_apps_data(launcher, settings, run):
    run("piauth_safe_authorize")
    configure(settings, SAFE_APP={**APP, "vendor": "Example Ltd"})
    _out, err = run("piauth_safe_authorize")
    assert "Warning" in err and "'Example'" in err and "'Example Ltd'" in err
    assert "no data" in err
    assert SafeGrant.objects.count() == 2
    # Authorized under the new pair: the warning has been given, it stops.
    _out, err = run("piauth_safe_status")
    assert "Warning" not in err


# status ----------------------------------------------------------------------------------

def test_status_prints_app_permissions_and_validity(launcher, run):
    with pytest.raises(CommandError, match="piauth_safe_authorize") as none:
        run("piauth_safe_status")
    assert "none" in none.value.out
    assert launcher.calls == []

    run("piauth_safe_authorize")
    out, _err = run("piauth_safe_status")
    for text in ("Shop 1.0", "com.example.shop", "Example", launcher.url, "SAFE_DRIVE_ACCESS",
                 "Authorized at", "Last checked", "valid"):
        assert text in out
    assert launcher.call_count("/auth", "GET") == 1


def test_status_reports_a_dead_token_after_a_launcher_restart(launcher, run):
    run("piauth_safe_authorize")
    launcher.restart()
    with pytest.raises(CommandError) as dead:
        run("piauth_safe_status")
    assert dead.value.returncode != 0
    assert "DEAD" in dead.value.out
    assert "manage.py piauth_safe_authorize" in dead.value.out
    assert "piauth_safe_authorize" in str(dead.value)
    grant = SafeGrant.objects.get()
    assert not grant.is_valid and grant.invalidated_at is not None

    # --no-check shows the stored state without asking.
    calls = len(launcher.calls)
    with pytest.raises(CommandError, match="dead"):
        run("piauth_safe_status", "--no-check")
    assert len(launcher.calls) == calls


def test_status_when_the_launcher_is_gone(launcher, settings, run):
    run("piauth_safe_authorize")
    configure(settings, SAFE_LAUNCHER_URL=closed_port_url())
    with pytest.raises(CommandError, match="Not authorized"):
        run("piauth_safe_status")  # grants belong to one Launcher: none for this one
    configure(settings, SAFE_LAUNCHER_URL=launcher.url)
    launcher.drop_connection()
    with pytest.raises(CommandError, match="Cannot check"):
        run("piauth_safe_status")
    assert SafeGrant.objects.get().is_valid  # an outage is not a "no"


# authorised calls ------------------------------------------------------------------------

def test_the_next_authorised_call_after_a_restart_marks_the_grant_dead(launcher, run):
    run("piauth_safe_authorize")
    response = authorized_request("GET", "/nfs/directory/app/")
    assert response.status == 200 and response.json()["files"] == []
    assert launcher.calls[-1].auth_scheme == "Bearer"

    launcher.restart()
    with pytest.raises(SafeGrantDead) as dead:
        authorized_request("GET", "/nfs/directory/app/")
    assert "run `manage.py piauth_safe_authorize`" in str(dead.value)
    grant = SafeGrant.objects.get()
    assert not grant.is_valid and grant.invalidated_at is not None

    # From now on: refused at once, no request, no waiting for anybody.
    calls = len(launcher.calls)
    with pytest.raises(SafeGrantDead, match="piauth_safe_authorize"):
        authorized_request("GET", "/nfs/directory/app/")
    with pytest.raises(SafeGrantDead):
        get_token()
    assert len(launcher.calls) == calls

    run("piauth_safe_authorize")
    assert authorized_request("GET", "/nfs/directory/app/").status == 200


def test_without_a_grant_an_authorised_call_fails_at_once(launcher):
    with pytest.raises(SafeNotAuthorized, match="piauth_safe_authorize"):
        authorized_request("GET", "/nfs/directory/app/")
    assert launcher.calls == []


# revoke ----------------------------------------------------------------------------------

def test_revoke_forgets_the_token(launcher, run):
    run("piauth_safe_authorize")
    token = SafeGrant.objects.get().token
    out, _err = run("piauth_safe_revoke")
    assert "Revoked" in out and "forgotten" in out
    assert launcher.call_count("/auth", "DELETE") == 1
    assert not launcher.token_valid(token)

    grant = SafeGrant.objects.get()  # the row stays as a record
    assert grant.token == "" and not grant.is_valid and grant.invalidated_at is not None
    assert grant.permissions_granted == ["SAFE_DRIVE_ACCESS"]
    [(stored, _granted, _valid)] = raw_rows()
    assert stored == ""

    with pytest.raises(CommandError, match="revoked"):
        run("piauth_safe_status")
    calls = len(launcher.calls)
    with pytest.raises(SafeNotAuthorized, match="piauth_safe_authorize"):
        authorized_request("GET", "/nfs/directory/app/")
    assert len(launcher.calls) == calls

    out, _err = run("piauth_safe_revoke")  # again: nothing left to do
    assert "No token was stored" in out
    run("piauth_safe_authorize")
    assert SafeGrant.objects.get().is_valid


def test_revoke_of_a_token_the_launcher_already_dropped(launcher, run):
    run("piauth_safe_authorize")
    launcher.restart()
    out, _err = run("piauth_safe_revoke")
    assert "no longer accepted" in out
    assert SafeGrant.objects.get().token == ""


def test_revoke_keeps_the_token_when_the_launcher_cannot_be_reached(launcher, run):
    run("piauth_safe_authorize")
    token = SafeGrant.objects.get().token
    launcher.drop_connection()
    with pytest.raises(CommandError, match="--forget") as kept:
        run("piauth_safe_revoke")
    assert kept.value.returncode != 0
    assert SafeGrant.objects.get().token == token

    launcher.drop_connection()
    out, _err = run("piauth_safe_revoke", "--forget")
    assert "forgotten" in out
    assert SafeGrant.objects.get().token == ""


def test_revoke_without_a_grant(launcher, run):
    out, _err = run("piauth_safe_revoke")
    assert "Nothing to revoke" in out
    assert launcher.calls == []


# secrets ---------------------------------------------------------------------------------

def test_the_token_appears_in_no_log_line_and_no_output(launcher, settings, run, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger: every library's debug lines
    tokens, texts = [], []

    run("piauth_safe_authorize")
    grant = SafeGrant.objects.get()
    tokens.append(grant.token)
    texts += [repr(grant), str(grant)]
    run("piauth_safe_status")
    authorized_request("GET", "/nfs/directory/app/")
    launcher.restart()
    with pytest.raises(CommandError):
        run("piauth_safe_status")
    run("piauth_safe_authorize")
    tokens.append(SafeGrant.objects.get().token)
    launcher.restart()
    with pytest.raises(SafeGrantDead) as dead:
        authorized_request("GET", "/nfs/directory/app/")
    texts.append(str(dead.value))
    run("piauth_safe_authorize", "--force")
    tokens.append(SafeGrant.objects.get().token)
    launcher.deny()
    with pytest.raises(CommandError):
        run("piauth_safe_authorize", "--force")
    run("piauth_safe_revoke")

    assert len(set(tokens)) == 3 and all(tokens)
    assert any("SAFE" in record.getMessage() for record in caplog.records)
    assert any(record.name.startswith("urllib3") for record in caplog.records)
    lines = [record.getMessage() for record in caplog.records] + [caplog.text]
    lines += [repr(call) for call in launcher.calls] + [repr(launcher)]
    lines += run.outputs + texts
    for token in tokens:
        for line in lines:
            assert token not in line
        # Not even the JWT's signature or payload on its own.
        for part in token.split(".")[1:]:
            assert all(part not in line for line in lines)
