"""SQLite's "database is locked" during linking (issue 14, point 3): retried where a retry
succeeds, 503 with Retry-After where it cannot, never a 500; check piauth.W017 warns
about the mode that causes it."""

import logging

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.db import OperationalError, connection

from django_piauth import backends
from django_piauth.models import Pioneer
from tests.helpers import all_at_once

User = get_user_model()
def sqlite_only(test):
    """SQLite's own error: run in the SQLite pass (scripts/test leaves the marker out of
    its PostgreSQL pass; run by hand there, it skips)."""
    skip = pytest.mark.skipif(connection.vendor != "sqlite",
                              reason="SQLite's own error (the SQLite pass runs it)")
    return pytest.mark.sqlite(skip(test))


def _w017():
    return [message for message in run_checks() if message.id == "piauth.W017"]


def test_sqlite_without_immediate_transactions_is_warned_about(monkeypatch):
    assert _w017() == []  # the test settings: IMMEDIATE (or PostgreSQL)
    options = connection.settings_dict.get("OPTIONS", {})
    monkeypatch.setitem(connection.settings_dict, "OPTIONS",
                        {k: v for k, v in options.items() if k != "transaction_mode"})
    warned = _w017()
    if connection.vendor == "sqlite":
        assert len(warned) == 1
        assert "'default'" in warned[0].msg and "database is locked" in warned[0].msg
        assert "'transaction_mode': 'IMMEDIATE'" in warned[0].hint
    else:
        assert warned == []
    monkeypatch.setitem(connection.settings_dict, "OPTIONS",
                        {**options, "transaction_mode": "DEFERRED"})
    assert len(_w017()) == (connection.vendor == "sqlite")


def _locked_first(monkeypatch, times):
    """create_user raises SQLite's "database is locked" the first ``times`` calls."""
    real = backends.LinkedAccountBackend.create_user
    calls = []

    def create_user(self, identity):
        calls.append(identity.uid)
        if len(calls) <= times:
            raise OperationalError("database is locked")
        return real(self, identity)

    monkeypatch.setattr(backends.LinkedAccountBackend, "create_user", create_user)
    return calls


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_locked_database_during_a_first_sign_in_is_tried_again(api_client, fake_pi,
                                                                 monkeypatch):
    calls = _locked_first(monkeypatch, times=2)
    token = fake_pi.issue_token(username="alice")
    response = api_client.get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert len(calls) == 3
    assert (User.objects.count(), Pioneer.objects.count()) == (1, 1)
    assert fake_pi.call_count("/v2/me") == 1


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_database_that_stays_locked_is_a_503_not_a_500(api_client, fake_pi, monkeypatch,
                                                         caplog):
    calls = _locked_first(monkeypatch, times=99)
    token = fake_pi.issue_token(username="alice")
    with caplog.at_level(logging.WARNING, logger="django_piauth"):
        response = api_client.get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert len(calls) == 4  # the first try and three more
    assert (User.objects.count(), Pioneer.objects.count()) == (0, 0)
    assert "stayed locked" in caplog.text
    assert token not in caplog.text
    # The database free again, the same token signs in. Its cached verdict is linked to
    # nobody, so upstream is asked once more (only a fresh answer makes an account).
    monkeypatch.undo()
    response = api_client.get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert (User.objects.count(), Pioneer.objects.count()) == (1, 1)
    assert fake_pi.call_count("/v2/me") == 2


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_lock_that_outlasted_sqlites_own_timeout_is_not_waited_for_again(
        api_client, fake_pi, monkeypatch):
    """SQLite said "locked" only after waiting its whole ``timeout``: another try would
    wait as long again (four tries: four timeouts). A 503 at once."""
    import time

    monkeypatch.setitem(connection.settings_dict, "OPTIONS",
                        {**connection.settings_dict.get("OPTIONS", {}), "timeout": 0.2})
    calls = []

    def create_user(self, identity):
        calls.append(1)
        time.sleep(0.2)  # as SQLite's busy wait would
        raise OperationalError("database is locked")

    monkeypatch.setattr(backends.LinkedAccountBackend, "create_user", create_user)
    token = fake_pi.issue_token(username="erin")
    response = api_client.get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503
    assert calls == [1]


@sqlite_only
@pytest.mark.django_db
def test_inside_an_enclosing_transaction_it_is_not_tried_again(fake_pi, monkeypatch):
    """Under ATOMIC_REQUESTS (here: the test's own transaction) a second try would read
    what the enclosing transaction read: a 503 at once."""
    from django_piauth.exceptions import DatabaseBusy, UpstreamUnavailable

    calls = _locked_first(monkeypatch, times=1)
    with pytest.raises(DatabaseBusy) as raised:
        backends.PiBackend().authenticate_token(None, fake_pi.issue_token(username="bob"))
    assert isinstance(raised.value, UpstreamUnavailable)
    assert len(calls) == 1


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_locked_database_when_bringing_a_pioneer_up_to_date_still_signs_in(
        api_client, fake_pi, monkeypatch, caplog):
    first = api_client.get("/api/whoami/", HTTP_AUTHORIZATION=(
        f"Bearer {fake_pi.issue_token(username='carol', scopes=('username',))}"))
    assert first.status_code == 200
    from django.db.models import QuerySet

    def locked(self, **changes):
        raise OperationalError("database is locked")

    monkeypatch.setattr(QuerySet, "update", locked)
    with caplog.at_level(logging.WARNING, logger="django_piauth"):
        response = api_client.get("/api/whoami/", HTTP_AUTHORIZATION=(
            f"Bearer {fake_pi.issue_token(username='carol', scopes=('username', 'payments'))}"))
    assert response.status_code == 200
    assert "not brought up to date" in caplog.text
    monkeypatch.undo()
    assert Pioneer.objects.get().scopes == ["username"]  # the next fresh answer updates it


@sqlite_only
@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_sign_ins_on_deferred_sqlite_never_answer_500(
        request, monkeypatch, live_fake_pi):
    """Two runserver processes on SQLite in Django's default DEFERRED mode (what W017
    warns about), 24 first sign-ins at once: 12 new Pioneers, and 12 requests of one more
    with one token. Every answer is 200 (or, at worst, a 503 to retry), never a 500;
    one User and Pioneer each, one upstream call per token."""
    monkeypatch.setenv("PIAUTH_TEST_SQLITE_DEFERRED", "1")
    urls = request.getfixturevalue("two_servers")
    live_fake_pi.delay(0.05)  # the requests overlap
    tokens = [live_fake_pi.issue_token(username=f"new{i}") for i in range(12)]
    shared = live_fake_pi.issue_token(username="everyone")

    def one(index):
        token = tokens[index] if index < 12 else shared
        response = requests.get(f"{urls[index % 2]}/api/whoami/",
                                headers={"Authorization": f"Bearer {token}"}, timeout=60)
        return response.status_code

    statuses = all_at_once(one, range(24))
    assert 500 not in statuses, statuses
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 20, statuses
    created = set(Pioneer.objects.values_list("username", flat=True))
    assert {f"new{i}" for i, status in enumerate(statuses[:12]) if status == 200} <= created
    assert Pioneer.objects.filter(username="everyone").count() == 1
    assert User.objects.filter(username="everyone").count() == 1
    # One call per new token; the shared one once per process (locmem: one cache each).
    assert live_fake_pi.call_count("/v2/me") == 12 + 2
