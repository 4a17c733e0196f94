"""CALL_DEADLINE bounds a whole upstream call, however slowly the upstream drips its
answer: a read timeout alone bounds each socket read, never the call."""

import time

import pytest
from django.test import Client

from django_piauth.exceptions import UpstreamUnavailable
from django_piauth.providers.deadline import _watchdog
from django_piauth.providers.pi import PiPlatformClient, get_pi_client
from django_piauth.providers.safe import SafeLauncherClient
from django_piauth.testing.faults import TrickleBody, TrickleHeaders
from django_piauth.testing.pi import FakePiPlatform
from django_piauth.testing.safe import FakeSafeLauncher
from django_piauth.testing.server import LoopbackServer

pytestmark = pytest.mark.live
KEY = "deadline-server-api-key"
APP = {"name": "Shop", "id": "com.example.shop", "version": "1.0", "vendor": "Example"}


@pytest.fixture
def pi():
    fake = FakePiPlatform(server_api_key=KEY)
    with LoopbackServer(fake) as server:
        fake.url = server.url
        yield fake


def timed(work):
    started = time.monotonic()
    try:
        work()
    except UpstreamUnavailable as exc:
        return time.monotonic() - started, str(exc)
    raise AssertionError("the call should not have succeeded")


@pytest.mark.parametrize("fault", [TrickleHeaders, TrickleBody])
def test_a_dripping_upstream_is_cut_off_at_the_deadline(pi, fault):
    client = PiPlatformClient(pi.url, server_api_key=KEY, timeout=(0.5, 0.3), deadline=0.6)
    dripping = fault(interval=0.02)  # every read gets a byte: the read timeout never fires
    pi.fail_on_wire(dripping)
    elapsed, message = timed(lambda: client.me("some-token"))
    assert message == "Pi Platform did not answer in time"
    assert 0.55 < elapsed < 1.0
    assert not dripping.finished.is_set()
    # The cut connection is not reused: the next call gets a fresh one and an answer.
    token = pi.issue_token(username="alice")
    assert client.me(token).username == "alice"


@pytest.mark.django_db
def test_the_deadline_comes_from_call_deadline(live_fake_pi, settings):
    settings.PIAUTH = {**settings.PIAUTH, "CONNECT_TIMEOUT": 0.5, "READ_TIMEOUT": 0.3,
                       "CALL_DEADLINE": 0.4}
    assert get_pi_client().deadline == 0.4
    live_fake_pi.fail_on_wire(TrickleBody(interval=0.02))
    started = time.monotonic()
    response = Client().post("/auth/pi/login/", {"accessToken": "a-token"})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert time.monotonic() - started < 0.8


def test_safe_authorize_waits_for_its_own_timeout_plus_the_deadline():
    fake = FakeSafeLauncher()
    with LoopbackServer(fake) as server:
        client = SafeLauncherClient(server.url, timeout=(0.5, 0.2), deadline=0.3,
                                    authorize_timeout=1.0)
        from django_piauth.providers.safe import app_from_setting

        app = app_from_setting(APP)
        fake.delay(0.6, count=1)  # a person who takes longer than the ordinary deadline
        fake.fail_on_wire(TrickleHeaders(interval=0.02), path="/auth")
        elapsed, message = timed(lambda: client.authorize(app, ["SAFE_DRIVE_ACCESS"]))
        assert 1.2 < elapsed < 1.8, elapsed
        assert "nobody answered" in message


def test_a_finished_call_leaves_nothing_for_the_watchdog(pi):
    client = PiPlatformClient(pi.url, server_api_key=KEY, timeout=(0.5, 0.3), deadline=0.6)
    token = pi.issue_token(username="alice")
    for _ in range(3):
        assert client.me(token).uid
    assert all(deadline.finished for _at, _n, deadline in _watchdog._heap)
    assert all(deadline.connection is None for _at, _n, deadline in _watchdog._heap)


def test_the_watchdog_is_woken_only_for_a_deadline_earlier_than_its_next_look(monkeypatch):
    """Calls one after another (a sync worker) all end before the watchdog's next look:
    none of them wakes its thread. A deadline earlier than that look does, and is kept:
    the call is cut off at it."""
    from django_piauth.providers.deadline import Deadline, _Watchdog

    watchdog = _Watchdog()
    notified = []
    real_notify = watchdog._condition.notify
    monkeypatch.setattr(watchdog._condition, "notify",
                        lambda *a: (notified.append(1), real_notify(*a)))

    def watched(seconds):
        deadline = Deadline(seconds)
        watchdog.watch(deadline)
        return deadline

    first = watched(30)  # starts the thread, which then sleeps until first.at
    for _ in range(100):
        if watchdog._looks_at == first.at:
            break
        time.sleep(0.01)
    assert watchdog._looks_at == first.at
    watchdog.release(first)
    for _ in range(20):  # twenty calls in a row, each a little later than the last
        watchdog.release(watched(30))
    assert notified == []
    short = watched(0.05)  # earlier than the thread's next look: it is woken
    assert notified == [1]
    time.sleep(0.3)
    assert short.expired
