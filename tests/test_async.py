"""The async path: Django's aauthenticate, without blocking the event loop."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import aauthenticate

from django_piauth.backends import PiBackend
from django_piauth.exceptions import UpstreamUnavailable
from django_piauth.models import Pioneer

pytestmark = pytest.mark.django_db


def test_aauthenticate_links_the_user(fake_pi):
    token = fake_pi.issue_token(username="alice")
    user = async_to_sync(aauthenticate)(None, pi_access_token=token)
    assert user is not None
    assert user.username == "alice"
    assert Pioneer.objects.get().user == user
    again = async_to_sync(aauthenticate)(None, pi_access_token=token)
    assert again == user
    assert fake_pi.call_count("/v2/me") == 1


def test_aauthenticate_refuses_rejected_tokens_and_ignores_other_calls(fake_pi):
    assert async_to_sync(aauthenticate)(None, pi_access_token="forged") is None
    assert async_to_sync(PiBackend().aauthenticate)(None, username="x", password="y") is None
    assert fake_pi.call_count("/v2/me") == 1


def test_async_outage_raises(fake_pi):
    fake_pi.fail_with(500)
    with pytest.raises(UpstreamUnavailable):
        async_to_sync(aauthenticate)(None, pi_access_token=fake_pi.issue_token(username="a"))


def test_the_event_loop_keeps_running_while_upstream_is_slow(fake_pi):
    """Ten concurrent sign-ins with one slow upstream call, and a ticker that runs
    throughout: the loop never waits on the network."""
    fake_pi.delay(0.3)
    token = fake_pi.issue_token(username="alice")

    async def scenario():
        ticks = 0
        done = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        users = await asyncio.gather(
            *(aauthenticate(None, pi_access_token=token) for _ in range(10))
        )
        done.set()
        await ticking
        return users, ticks

    users, ticks = async_to_sync(scenario)()
    assert len({user.pk for user in users}) == 1
    assert fake_pi.call_count("/v2/me") == 1
    assert ticks >= 10  # a blocked loop would tick once or twice in 0.3 s
