"""Verified tokens are cached; the hot path is one query and no upstream call."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.cache import cache
from django.utils import timezone

from django_piauth.exceptions import InvalidToken, UpstreamUnavailable
from django_piauth.models import Pioneer
from django_piauth.singleflight import placeholder
from django_piauth.verification import (
    local_verdicts,
    token_digest,
    verdict_key,
    verify_pi_token,
)
from tests.helpers import all_at_once, outcome

pytestmark = pytest.mark.django_db
URL = "/api/whoami/"


def key_of(token):
    """Where the shared cache keeps the verdict on ``token``."""
    return verdict_key(token_digest(token))


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def locmem(settings):
    """An in-process cache whose expiry follows time.time() (Redis keeps its own clock)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "clocked"}}
    cache.clear()


@pytest.fixture
def clock(monkeypatch, locmem):
    """Moves time.time() (ours and the cache's) forward without sleeping."""
    offset = [0.0]
    real_time = time.time
    real_now = timezone.now
    monkeypatch.setattr(time, "time", lambda: real_time() + offset[0])
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=offset[0]))

    def advance(seconds):
        offset[0] += seconds

    return advance


def test_cached_token_costs_no_upstream_call_one_query_and_no_write(
        client, fake_pi, django_assert_num_queries):
    token = fake_pi.issue_token(username="alice")
    assert client.get(URL, **bearer(token)).status_code == 200
    before = Pioneer.objects.get().last_verified_at
    with django_assert_num_queries(3) as queries:  # one per request
        for _ in range(3):
            assert client.get(URL, **bearer(token)).status_code == 200
    assert fake_pi.call_count("/v2/me") == 1
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in queries.captured_queries)
    assert Pioneer.objects.get().last_verified_at == before


def test_a_returning_pioneers_new_token_costs_one_query_and_no_write(
        client, fake_pi, django_assert_num_queries):
    client.get(URL, **bearer(fake_pi.issue_token(username="alice")))
    fresh = fake_pi.issue_token(username="alice")  # same Pioneer, a token not seen yet
    with django_assert_num_queries(1):
        assert client.get(URL, **bearer(fresh)).status_code == 200
    assert fake_pi.call_count("/v2/me") == 2


def test_cache_holds_a_keyed_digest_never_the_token(fake_pi, locmem):
    token = fake_pi.issue_token(username="alice")
    verify_pi_token(token)
    keys = list(cache._cache.keys())  # locmem's store
    assert keys
    assert not any(token in key for key in keys)
    assert any(token_digest(token) in key for key in keys)
    assert not any(token in repr(cache._cache[key]) for key in keys)


def test_entry_expires_at_valid_until(client, fake_pi, clock):
    token = fake_pi.issue_token(username="alice", valid_for=60)  # TTL is 300: valid_until wins
    assert client.get(URL, **bearer(token)).status_code == 200
    # The fake keeps valid_until in whole seconds, rounded down: up to a second
    # earlier than 60 s from now, so this stays a second clear of it.
    clock(58)
    assert client.get(URL, **bearer(token)).status_code == 200
    assert fake_pi.call_count("/v2/me") == 1
    clock(3)  # past valid_until: asked again, and upstream now says no
    assert client.get(URL, **bearer(token)).status_code == 401
    assert fake_pi.call_count("/v2/me") == 2


def test_entry_lives_at_most_the_configured_ttl(client, fake_pi, clock, settings):
    settings.PIAUTH = {**settings.PIAUTH, "TOKEN_CACHE_TTL": 10}
    token = fake_pi.issue_token(username="alice", valid_for=3600)
    client.get(URL, **bearer(token))
    clock(9)
    client.get(URL, **bearer(token))
    assert fake_pi.call_count("/v2/me") == 1
    clock(2)
    assert client.get(URL, **bearer(token)).status_code == 200
    assert fake_pi.call_count("/v2/me") == 2


def test_rejected_token_is_remembered_briefly(client, fake_pi, clock):
    for _ in range(5):
        assert client.get(URL, **bearer("replayed-garbage")).status_code == 401
    assert fake_pi.call_count("/v2/me") == 1
    clock(31)  # REJECTED_TOKEN_CACHE_TTL defaults to 30 s
    assert client.get(URL, **bearer("replayed-garbage")).status_code == 401
    assert fake_pi.call_count("/v2/me") == 2


def test_outages_are_never_cached(client, fake_pi):
    token = fake_pi.issue_token(username="alice")
    fake_pi.fail_with(503)
    assert client.get(URL, **bearer(token)).status_code == 503
    assert client.get(URL, **bearer(token)).status_code == 200
    assert fake_pi.call_count("/v2/me") == 2


def test_a_deactivated_user_is_refused_at_once_despite_the_cache(client, fake_pi):
    token = fake_pi.issue_token(username="alice")
    assert client.get(URL, **bearer(token)).status_code == 200
    get_user_model().objects.update(is_active=False)
    assert client.get(URL, **bearer(token)).status_code == 401
    assert fake_pi.call_count("/v2/me") == 1  # no upstream call
    get_user_model().objects.update(is_active=True)
    assert client.get(URL, **bearer(token)).status_code == 200
    assert fake_pi.call_count("/v2/me") == 1


@pytest.mark.parametrize("local_ttl", [10, 0])  # with and without the process's copy
def test_a_deleted_users_cached_token_is_verified_again_before_a_new_account(
        client, fake_pi, settings, local_ttl):
    """Deletion is erasure, not a ban: the person may come back, but only upstream may
    vouch for the new account, not the verdict cached for the deleted one."""
    settings.PIAUTH = {**settings.PIAUTH, "LOCAL_CACHE_TTL": local_ttl}
    token = fake_pi.issue_token(username="alice")
    assert client.get(URL, **bearer(token)).status_code == 200
    old_user = get_user_model().objects.get()
    old_user.delete()
    response = client.get(URL, **bearer(token))
    assert response.status_code == 200
    assert fake_pi.call_count("/v2/me") == 2  # exactly one more call
    new_user = get_user_model().objects.get()
    assert new_user.pk != old_user.pk
    assert Pioneer.objects.get().user == new_user
    assert client.get(URL, **bearer(token)).status_code == 200
    assert fake_pi.call_count("/v2/me") == 2  # the fresh verdict is cached again


def test_a_deleted_users_cached_token_that_upstream_now_rejects_is_401(client, fake_pi):
    token = fake_pi.issue_token(username="alice")
    assert client.get(URL, **bearer(token)).status_code == 200
    get_user_model().objects.all().delete()
    fake_pi.revoke(token)
    response = client.get(URL, **bearer(token))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert fake_pi.call_count("/v2/me") == 2
    assert not get_user_model().objects.exists()
    assert not Pioneer.objects.exists()


def test_a_deleted_users_cached_token_is_verified_again_on_the_async_path_too(fake_pi):
    from asgiref.sync import async_to_sync
    from django.contrib.auth import aauthenticate

    token = fake_pi.issue_token(username="alice")
    assert async_to_sync(aauthenticate)(None, pi_access_token=token) is not None
    get_user_model().objects.all().delete()
    fake_pi.revoke(token)
    assert async_to_sync(aauthenticate)(None, pi_access_token=token) is None
    assert fake_pi.call_count("/v2/me") == 2
    assert not Pioneer.objects.exists()


def test_last_verified_at_is_written_at_most_once_per_interval(fake_pi, clock, settings):
    settings.PIAUTH = {**settings.PIAUTH, "LAST_VERIFIED_INTERVAL": 60}
    authenticate(None, pi_access_token=fake_pi.issue_token(username="alice"))
    first = Pioneer.objects.get().last_verified_at
    clock(30)
    authenticate(None, pi_access_token=fake_pi.issue_token(username="alice"))  # fresh token
    assert Pioneer.objects.get().last_verified_at == first
    clock(31)
    authenticate(None, pi_access_token=fake_pi.issue_token(username="alice"))
    assert Pioneer.objects.get().last_verified_at > first
    assert fake_pi.call_count("/v2/me") == 3


def test_threads_with_one_unseen_token_share_one_upstream_call(fake_pi):
    fake_pi.delay(0.2)
    token = fake_pi.issue_token(username="alice")
    verifications = all_at_once(lambda _: verify_pi_token(token), range(10))
    assert [v.identity.uid for v in verifications] == [fake_pi.uid_for("alice")] * 10
    assert [v.from_upstream for v in verifications].count(True) == 1
    assert all(v.fresh for v in verifications)  # the others waited for that call
    assert fake_pi.call_count("/v2/me") == 1


def test_an_outage_reaches_every_waiting_thread_and_is_not_kept(fake_pi):
    fake_pi.delay(0.2, count=1)
    fake_pi.fail_with(503, count=1)
    token = fake_pi.issue_token(username="alice")
    outcomes = all_at_once(lambda _: outcome(lambda: verify_pi_token(token)), range(5))
    assert outcomes == ["UpstreamUnavailable"] * 5
    assert fake_pi.call_count("/v2/me") == 1
    assert verify_pi_token(token).from_upstream is True


def test_waits_for_another_process_holding_the_lock(fake_pi):
    """Another process (played by a thread) holds the lock and stores the answer."""
    token = fake_pi.issue_token(username="alice")
    key = key_of(token)
    assert cache.add(key, placeholder("other-process"), timeout=10)

    def other_process_finishes():
        time.sleep(0.2)
        verdict = (time.time() + 60, ("uid-from-elsewhere", "alice", ("username",), None))
        cache.set(key, verdict, timeout=60)

    threading.Thread(target=other_process_finishes).start()
    verification = verify_pi_token(token)
    assert verification.identity.uid == "uid-from-elsewhere"
    assert verification.from_upstream is False
    assert verification.fresh is True  # made while this request waited for it
    assert fake_pi.call_count("/v2/me") == 0


def test_takes_over_when_the_lock_holder_died(fake_pi, settings):
    settings.PIAUTH = {**settings.PIAUTH, "CONNECT_TIMEOUT": 0.1, "READ_TIMEOUT": 0.1}
    token = fake_pi.issue_token(username="alice")
    key = key_of(token)
    assert cache.add(key, placeholder("dead-process"), timeout=1)  # never replaced
    started = time.monotonic()
    verification = verify_pi_token(token)
    assert 0.9 < time.monotonic() - started < 5  # waited for the lock to run out
    assert verification.from_upstream is True
    assert fake_pi.call_count("/v2/me") == 1
    assert cache.get(key)[1][0] == fake_pi.uid_for("alice")


def test_hears_of_another_process_failing(fake_pi):
    token = fake_pi.issue_token(username="alice")
    key = key_of(token)
    assert cache.add(key, placeholder("other-process"), timeout=10)

    def other_process_fails():
        time.sleep(0.1)
        cache.set(f"{key}:failed", "other-process", timeout=5)
        cache.delete(key)

    threading.Thread(target=other_process_fails).start()
    with pytest.raises(UpstreamUnavailable):
        verify_pi_token(token)
    assert fake_pi.call_count("/v2/me") == 0
    # A later request is not bound by that failure note: it asks upstream itself.
    assert verify_pi_token(token).from_upstream is True


def test_a_failed_call_lets_go_of_the_lock_and_leaves_a_note_for_waiters(fake_pi):
    token = fake_pi.issue_token(username="alice")
    key = key_of(token)
    fake_pi.fail_with(503, count=1)
    with pytest.raises(UpstreamUnavailable):
        verify_pi_token(token)
    assert cache.get(key) is None
    assert cache.get(f"{key}:failed") is not None


@pytest.fixture
def cache_calls(monkeypatch):
    """The names of the shared cache's methods called, in order (one per round trip
    to Redis: not the calls locmem's ``get_many`` makes to its own ``get``)."""
    from django_piauth.verification import token_cache

    shared = token_cache()
    called = []
    inside = []
    for name in ("get", "get_many", "add", "set", "delete"):
        method = getattr(shared, name)

        def recorded(*args, _name=name, _method=method, **kwargs):
            if not inside:
                called.append(_name)
            inside.append(_name)
            try:
                return _method(*args, **kwargs)
            finally:
                inside.pop()

        monkeypatch.setattr(shared, name, recorded)
    return called


def test_an_unseen_token_costs_two_round_trips_to_the_shared_cache(fake_pi, cache_calls):
    verify_pi_token(fake_pi.issue_token(username="alice"))
    assert cache_calls == ["add", "set"]  # the lock (the first look, too), the verdict


def test_a_token_seen_here_before_costs_one_read_once_its_local_copy_is_old(
        fake_pi, clock, cache_calls):
    token = fake_pi.issue_token(username="alice")
    verify_pi_token(token)
    clock(11)  # past LOCAL_CACHE_TTL
    cache_calls.clear()
    assert verify_pi_token(token).from_upstream is False
    assert cache_calls == ["get_many"]


def test_a_token_another_process_verified_costs_the_failed_lock_and_one_read(
        fake_pi, cache_calls):
    token = fake_pi.issue_token(username="alice")
    verify_pi_token(token)
    local_verdicts.clear()  # as if this were another process
    cache_calls.clear()
    verification = verify_pi_token(token)
    assert (verification.from_upstream, verification.fresh) == (False, False)
    assert cache_calls == ["add", "get_many"]
    assert fake_pi.call_count("/v2/me") == 1


def test_an_answer_already_past_its_valid_until_is_used_once_not_cached():
    import responses

    past = datetime.now(UTC) - timedelta(seconds=5)
    body = {"uid": "u-1", "credentials": {"valid_until": {"iso8601": past.isoformat()}}}
    with responses.RequestsMock() as rsps:
        rsps.get("https://api.minepi.example/v2/me", json=body)
        assert verify_pi_token("tok-a").identity.uid == "u-1"
        assert verify_pi_token("tok-a").from_upstream is True
        assert len(rsps.calls) == 2


def test_a_process_local_copy_spares_the_shared_cache_for_a_few_seconds(fake_pi, clock):
    token = fake_pi.issue_token(username="alice")
    verify_pi_token(token)
    cache.clear()  # as if the shared cache were elsewhere: only the local copy answers
    assert verify_pi_token(token).from_upstream is False
    clock(11)  # LOCAL_CACHE_TTL defaults to 10 s
    assert verify_pi_token(token).from_upstream is True
    assert fake_pi.call_count("/v2/me") == 2


def test_the_local_copy_can_be_turned_off(fake_pi, settings, locmem):
    settings.PIAUTH = {**settings.PIAUTH, "LOCAL_CACHE_TTL": 0}
    token = fake_pi.issue_token(username="alice")
    verify_pi_token(token)
    cache.clear()
    assert verify_pi_token(token).from_upstream is True


def test_the_local_copy_never_outlives_the_token_cache_ttl(fake_pi, settings, clock):
    settings.PIAUTH = {**settings.PIAUTH, "TOKEN_CACHE_TTL": 3, "LOCAL_CACHE_TTL": 10}
    token = fake_pi.issue_token(username="alice")
    verify_pi_token(token)
    clock(2)
    assert verify_pi_token(token).from_upstream is False
    clock(2)
    assert verify_pi_token(token).from_upstream is True


def test_a_verdict_past_its_time_is_not_used_even_if_the_cache_still_has_it(fake_pi):
    token = fake_pi.issue_token(username="alice")
    key = key_of(token)
    cache.set(key, (time.time() - 1, ("stale-uid", "alice", (), None)), timeout=60)
    assert verify_pi_token(token).identity.uid == fake_pi.uid_for("alice")


def test_something_else_under_the_key_is_not_a_verdict(fake_pi):
    token = fake_pi.issue_token(username="alice")
    key = key_of(token)
    cache.set(key, {"written": "by something else"}, timeout=60)
    assert verify_pi_token(token).from_upstream is True
    assert cache.get(key)[1][0] == fake_pi.uid_for("alice")


def test_the_verdict_takes_the_locks_place_and_an_answer_with_no_time_left_leaves_nothing(
        fake_pi):
    token = fake_pi.issue_token(username="alice")
    verify_pi_token(token)
    assert cache.get(key_of(token))[1][0] == fake_pi.uid_for("alice")
    expired = fake_pi.issue_token(username="bob", valid_for=-5)
    with pytest.raises(InvalidToken):
        verify_pi_token(expired)  # upstream says 401: remembered briefly
    assert cache.get(key_of(expired))[1] is None



def test_the_local_copy_keeps_at_most_max_entries_forgetting_the_oldest(clock):
    from django_piauth.verification import LocalVerdicts

    local = LocalVerdicts(max_entries=3)
    verdict = (time.time() + 60, ("uid", "name", (), None))
    for key in ("a", "b", "c"):
        local.put(key, verdict)
    local.put("a", verdict)  # used again: now the newest
    local.put("d", verdict)
    assert [key for key in "abcd" if local.get(key)] == ["a", "c", "d"]


def test_the_local_copy_remembers_a_token_was_seen_until_its_verdict_ends(clock):
    from django_piauth.verification import LocalVerdicts

    local = LocalVerdicts()
    local.put("k", (time.time() + 60, ("uid", "name", (), None)))
    clock(11)  # past LOCAL_CACHE_TTL: not used any more, but known
    assert local.get("k") is None and local.seen("k")
    clock(50)  # past the verdict's end
    assert not local.seen("k")


def test_forgetting_an_expired_entry_never_races_a_put_of_the_same_key():
    """seen() finds an expired entry; before it drops it, another thread puts a fresh
    verdict there (and is still ordering its entries). The fresh verdict must survive
    and put() must not fail."""
    from collections import OrderedDict

    from django_piauth.verification import LocalVerdicts

    read_expired, stored = threading.Event(), threading.Event()

    class Interleaved(OrderedDict):
        def get(self, key, default=None):
            value = super().get(key, default)
            if threading.current_thread().name == "seen" and not read_expired.is_set():
                read_expired.set()
                stored.wait(timeout=2)  # the put below has stored its verdict meanwhile
            return value

        def __setitem__(self, key, value):
            super().__setitem__(key, value)
            if threading.current_thread().name == "put":
                stored.set()
                time.sleep(0.2)  # between storing and move_to_end: seen() acts now

    local = LocalVerdicts()
    local._entries = Interleaved()
    local.put("k", (time.time() - 1, ("old-uid", "name", (), None)))  # expired
    fresh = (time.time() + 60, ("new-uid", "name", (), None))
    errors = []

    def put():
        try:
            local.put("k", fresh)
        except Exception as exc:
            errors.append(exc)

    seen = threading.Thread(target=local.seen, args=("k",), name="seen")
    putter = threading.Thread(target=lambda: (read_expired.wait(2), put()), name="put")
    seen.start()
    putter.start()
    seen.join(5)
    putter.join(5)
    assert errors == []
    assert local.get("k") == fresh


@pytest.fixture
def cache_down(settings, fake_pi):
    settings.CACHES = {**settings.CACHES,
                       "default": {"BACKEND": "tests.helpers.BrokenCache"}}


def test_a_shared_cache_that_is_down_costs_a_warning_not_a_500(client, fake_pi, cache_down,
                                                              caplog):
    token = fake_pi.issue_token(username="alice")
    for _ in range(3):
        assert client.get(URL, **bearer(token)).status_code == 200
    # Verified upstream once, then from the process's own copy.
    assert fake_pi.call_count("/v2/me") == 1
    warnings = [r for r in caplog.records if "shared cache failed" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    assert "ConnectionError" in warnings[0].getMessage()
    assert token not in caplog.text
    assert client.get(URL, **bearer("rejected-token")).status_code == 401


def test_with_the_cache_down_threads_of_a_process_still_share_one_call(fake_pi, cache_down):
    fake_pi.delay(0.2)
    token = fake_pi.issue_token(username="alice")
    uids = all_at_once(lambda _: verify_pi_token(token).identity.uid, range(8))
    assert uids == [fake_pi.uid_for("alice")] * 8
    assert fake_pi.call_count("/v2/me") == 1


def test_an_outage_with_the_cache_down_is_still_a_503(client, fake_pi, cache_down):
    fake_pi.fail_with(503)
    response = client.get(URL, **bearer(fake_pi.issue_token(username="alice")))
    assert response.status_code == 503


def test_a_cache_that_never_takes_the_lock_gives_up_with_a_503(client, fake_pi, settings):
    settings.PIAUTH = {**settings.PIAUTH, "CONNECT_TIMEOUT": 0.1, "READ_TIMEOUT": 0.1}
    settings.CACHES = {**settings.CACHES,
                       "default": {"BACKEND": "tests.helpers.NeverLockingCache"}}
    started = time.monotonic()
    response = client.get(URL, **bearer(fake_pi.issue_token(username="alice")))
    assert response.status_code == 503
    assert time.monotonic() - started < 10  # bounded: twice the lock's life, plus 1 s
    assert fake_pi.call_count("/v2/me") == 0
