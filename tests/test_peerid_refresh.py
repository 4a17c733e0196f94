"""PeerID refresh under concurrency and transactions: one refresh at a time across threads
and processes, no database lock held across the call to PeerID, and a rotation (or a
revocation) that survives the rollback of the request's transaction."""

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.db import connection, connections, transaction
from django.test import Client
from django.utils import timezone

from django_piauth.models import PeerIDCredential
from django_piauth.peerid import refresh
from django_piauth.providers.peerid import get_peerid_client
from tests.helpers import all_at_once
from tests.test_peerid import PASSWORD, REFRESH, expire, post_json, sign_in

#: Seconds the fake PeerID takes to answer a refresh in the slow tests.
SLOW = 2.0
REFUSE = "/api/peerid/refuse/"


def refreshes_in_flight(fake):
    return [call for call in fake.calls if call.path == REFRESH and call.status is None]


def wait_for(condition: Callable[[], object], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never came true")
        time.sleep(0.01)


def in_a_thread(work: Callable[[], object]) -> tuple[threading.Thread, list]:
    """``work()`` started in a thread; the list gets its result or exception."""
    outcome: list = []

    def run():
        try:
            outcome.append(work())
        except Exception as exc:
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.fixture
def alice(fake_peerid):
    return fake_peerid.add_user(login="alice", password=PASSWORD)


@pytest.fixture
def live_alice(live_fake_peerid):
    return live_fake_peerid.add_user(login="alice", password=PASSWORD)


@pytest.fixture
def atomic_requests(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)


@pytest.fixture
def without_refresh_middleware(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "PeerID" not in m]


# One refresh at a time, no database lock across the call ------------------------------

@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_slow_refresh_does_not_stall_an_unrelated_write(live_fake_peerid, live_alice):
    """With IMMEDIATE transactions on SQLite, the refresh used to hold the database's write
    lock for the whole call to PeerID: every other write in the site waited for it."""
    credential = sign_in(Client())
    expire(credential)
    live_fake_peerid.delay(SLOW, path=REFRESH)
    thread, outcome = in_a_thread(lambda: refresh(credential.pk))
    wait_for(lambda: refreshes_in_flight(live_fake_peerid))

    get_user_model().objects.create(username="bob")  # an unrelated write
    written_while_peerid_answers = bool(refreshes_in_flight(live_fake_peerid))
    thread.join(timeout=SLOW * 10)

    assert written_while_peerid_answers, "the write waited for the call to PeerID"
    assert get_user_model().objects.filter(username="bob").exists()
    assert outcome and isinstance(outcome[0], PeerIDCredential)
    assert live_fake_peerid.call_count(REFRESH) == 1
    credential.refresh_from_db()
    assert live_fake_peerid.access_token_valid(credential.access_token)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_make_one_call_and_all_get_its_tokens(live_fake_peerid,
                                                                    live_alice):
    credential = sign_in(Client())
    expire(credential)
    live_fake_peerid.delay(0.3, path=REFRESH)

    results = all_at_once(lambda _: refresh(credential.pk), range(5))

    assert live_fake_peerid.call_count(REFRESH) == 1
    assert len({(r.access_token, r.refresh_token) for r in results}) == 1
    credential.refresh_from_db()
    assert (credential.access_token, credential.refresh_token) == (
        results[0].access_token, results[0].refresh_token)
    assert live_fake_peerid.access_token_valid(credential.access_token)
    assert credential.refresh_claimed_until is None  # the claim was released


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_refresh_waits_for_another_process_and_uses_its_tokens(live_fake_peerid,
                                                                  live_alice):
    credential = sign_in(Client())
    expire(credential)
    # Another process has claimed the refresh and is calling PeerID.
    PeerIDCredential.objects.filter(pk=credential.pk).update(
        refresh_claimed_by="another-process",
        refresh_claimed_until=timezone.now() + timedelta(seconds=60))
    thread, outcome = in_a_thread(lambda: refresh(credential.pk))
    time.sleep(0.3)  # our refresh sees the claim and waits
    assert thread.is_alive()
    assert live_fake_peerid.call_count(REFRESH) == 0

    # The other process gets its answer, stores it and releases the claim.
    tokens = get_peerid_client().refresh(credential.refresh_token)
    PeerIDCredential.objects.filter(pk=credential.pk).update(
        access_token=tokens.access_token, refresh_token=tokens.refresh_token,
        expires_at=tokens.expires_at, refresh_claimed_by="", refresh_claimed_until=None)
    thread.join(timeout=10)

    assert [(c.access_token, c.refresh_token) for c in outcome] == [
        (tokens.access_token, tokens.refresh_token)]
    assert live_fake_peerid.call_count(REFRESH) == 1  # the other process's only
    credential.refresh_from_db()
    assert credential.revoked_at is None
    assert live_fake_peerid.refresh_token_valid(credential.refresh_token)


@pytest.mark.django_db
def test_a_claim_left_by_a_dead_refresher_is_taken_over(client, fake_peerid, alice):
    credential = sign_in(client)
    expire(credential)
    PeerIDCredential.objects.filter(pk=credential.pk).update(
        refresh_claimed_by="a-crashed-process",
        refresh_claimed_until=timezone.now() - timedelta(seconds=1))

    assert client.get("/home/").status_code == 200

    assert fake_peerid.call_count(REFRESH) == 1
    credential.refresh_from_db()
    assert fake_peerid.access_token_valid(credential.access_token)
    assert (credential.refresh_claimed_by, credential.refresh_claimed_until) == ("", None)


# A rotation survives the request's rollback (PostgreSQL) --------------------------------

@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failure", ["ValidationError", "exception"])
def test_a_refresh_in_a_view_that_then_fails_survives_atomic_requests(
        fake_peerid, alice, atomic_requests, without_refresh_middleware, failure):
    client = Client(raise_request_exception=False)
    credential = sign_in(client)
    expire(credential)

    response = post_json(client, REFUSE, {"raise": failure == "exception"})

    assert response.status_code == (400 if failure == "ValidationError" else 500)
    assert fake_peerid.call_count(REFRESH) == 1
    credential.refresh_from_db()
    assert fake_peerid.access_token_valid(credential.access_token)
    assert fake_peerid.refresh_token_valid(credential.refresh_token)
    assert client.get("/api/whoami/").status_code == 200  # still signed in
    assert fake_peerid.call_count(REFRESH) == 1


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_refresh_on_a_401_in_a_view_that_then_fails_survives_atomic_requests(
        client, fake_peerid, alice, atomic_requests):
    credential = sign_in(client)
    fake_peerid.expire_all_access_tokens()

    response = post_json(client, REFUSE, {"operations": [{"op_name": "transfer"}]})

    assert response.status_code == 400
    assert fake_peerid.call_count("/api/v1/app/operations") == 2
    assert fake_peerid.call_count(REFRESH) == 1
    credential.refresh_from_db()
    assert fake_peerid.access_token_valid(credential.access_token)
    assert client.get("/api/whoami/").status_code == 200


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_revocation_in_a_view_survives_atomic_requests(
        client, fake_peerid, alice, atomic_requests, without_refresh_middleware):
    credential = sign_in(client)
    fake_peerid.revoke_refresh_token(credential.refresh_token)
    expire(credential)
    other_tab = Client()
    other_tab.cookies[django_settings.SESSION_COOKIE_NAME] = (
        client.cookies[django_settings.SESSION_COOKIE_NAME].value)

    assert client.get("/api/whoami/").status_code == 401  # DRF rolls the request back

    credential.refresh_from_db()
    assert credential.revoked_at is not None and credential.access_token == ""
    assert other_tab.get("/api/whoami/").status_code == 401
    assert fake_peerid.call_count(REFRESH) == 1  # not asked again with the dead token


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_credential_changed_by_the_callers_transaction_is_refreshed_in_it(
        fake_peerid, alice):
    """The row is locked by the caller's own uncommitted write: an independent connection
    would wait for it forever, so the refresh is made on the caller's connection."""
    credential = sign_in(Client())
    with transaction.atomic():
        expire(credential)
        fresh = refresh(credential.pk)
    assert fake_peerid.call_count(REFRESH) == 1
    credential.refresh_from_db()
    assert credential.access_token == fresh.access_token
    assert fake_peerid.access_token_valid(credential.access_token)


# SQLite with ATOMIC_REQUESTS -----------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_the_middleware_refreshes_before_the_views_transaction(
        client, fake_peerid, alice, atomic_requests):
    """What the README tells SQLite users: with PeerIDRefreshMiddleware the refresh is
    committed before the view's transaction starts, so a failing view cannot undo it."""
    credential = sign_in(client)
    expire(credential)

    assert post_json(client, REFUSE, {}).status_code == 400

    credential.refresh_from_db()
    assert fake_peerid.access_token_valid(credential.access_token)
    assert client.get("/api/whoami/").status_code == 200
    assert fake_peerid.call_count(REFRESH) == 1


def test_sqlite_with_atomic_requests_and_no_refresh_middleware_is_warned_about(
        settings, atomic_requests, monkeypatch):
    sqlite = connection.vendor == "sqlite"
    assert "piauth.W016" not in {message.id for message in run_checks()}  # middleware
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "PeerID" not in m]
    assert ("piauth.W016" in {message.id for message in run_checks()}) is sqlite
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", False)
    assert "piauth.W016" not in {message.id for message in run_checks()}


@pytest.mark.django_db
def test_a_refresh_for_another_user_ends_the_session(client, alice, fake_peerid, monkeypatch):
    """PeerID (or whoever answers in its place) hands back tokens of another user: the
    session ends and the credential is revoked; nobody is switched to that user."""
    import dataclasses

    from django_piauth.providers import peerid as provider

    credential = sign_in(client)
    expire(credential)
    real_parse = provider.parse_tokens
    monkeypatch.setattr(provider, "parse_tokens", lambda payload, client_id: dataclasses.replace(
        real_parse(payload, client_id), user_id=alice + 1))
    response = client.get("/api/whoami/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert [call.path for call in fake_peerid.calls].count(REFRESH) == 1
    credential.refresh_from_db()
    assert credential.revoked_at is not None
    assert (credential.access_token, credential.refresh_token) == ("", "")
    assert "_auth_user_id" not in client.session
