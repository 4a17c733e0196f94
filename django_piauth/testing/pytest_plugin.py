"""pytest fixtures for the fake upstreams.

Load them in your ``conftest.py``::

    pytest_plugins = ["django_piauth.testing.pytest_plugin"]

``fake_pi`` answers at ``PIAUTH["PI_API_URL"]`` through ``responses`` (no socket);
``live_fake_pi`` runs a real server on 127.0.0.1 and points ``PI_API_URL`` at it.
Both accept the configured ``PI_SERVER_API_KEY`` (``"fake-server-api-key"`` if none).

``fake_peerid`` answers at ``PIAUTH["PEERID_URL"]`` through ``responses``;
``live_fake_peerid`` runs a real server and points ``PEERID_URL`` at it. Both register the
configured ``PEERID_CLIENT_ID`` / ``PEERID_CLIENT_SECRET`` as the fake's app, and set them
to the fake's defaults (42, ``"fake-peerid-secret"``) for the test when they are not set.

``fake_safe`` answers at ``PIAUTH["SAFE_LAUNCHER_URL"]`` through ``responses``;
``live_fake_safe`` runs a real server and points ``SAFE_LAUNCHER_URL`` at it.

The ``responses`` fixtures share one ``RequestsMock`` (``piauth_responses``), so ``fake_pi``
and ``fake_peerid`` work together in one test; loopback URLs pass through to live fakes.

Every fixture starts from a clean slate: ``piauth_clean`` (which they use; use it too in a
test that needs no fake) calls :func:`~django_piauth.testing.piauth_reset`, so no verdict
on a token survives from one test to the next, not even in the per-process copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .peerid import DEFAULT_PEERID_CLIENT_ID, DEFAULT_PEERID_CLIENT_SECRET, FakePeerID
from .pi import DEFAULT_SERVER_API_KEY, FakePiPlatform
from .responses_adapter import LOOPBACK_URLS, serve_with_responses
from .safe import FakeSafeLauncher
from .server import LoopbackServer

if TYPE_CHECKING:
    import responses


def _configured_key() -> str:
    from django_piauth.conf import piauth_settings

    return piauth_settings.PI_SERVER_API_KEY or DEFAULT_SERVER_API_KEY


@pytest.fixture
def piauth_clean() -> Iterator[None]:
    """Forget django-piauth's cached verdicts and built clients before and after the test."""
    from .reset import piauth_reset

    piauth_reset()
    yield
    piauth_reset()


@pytest.fixture
def piauth_responses(piauth_clean: None) -> Iterator[responses.RequestsMock]:
    """The one ``responses.RequestsMock`` the ``responses``-served fakes share.

    Any request that no fake answers fails with ``ConnectionError``, except loopback URLs,
    which pass through to live fakes. Add your own routes to it if you need them.
    """
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(LOOPBACK_URLS)
        yield rsps


@pytest.fixture
def fake_pi(piauth_responses: responses.RequestsMock) -> Iterator[FakePiPlatform]:
    """A :class:`FakePiPlatform` served through ``responses`` at ``PIAUTH["PI_API_URL"]``.

    Any other non-loopback request fails with ``ConnectionError``; loopback URLs pass
    through, so live fakes can be used alongside.
    """
    from django_piauth.conf import piauth_settings

    fake = FakePiPlatform(server_api_key=_configured_key())
    fake.url = piauth_settings.PI_API_URL.rstrip("/")
    serve_with_responses(fake, piauth_responses, fake.url)
    yield fake


@pytest.fixture
def live_fake_pi(settings: Any, piauth_clean: None) -> Iterator[FakePiPlatform]:
    """A :class:`FakePiPlatform` on a real loopback server; ``PIAUTH["PI_API_URL"]`` points
    at it for the test (other ``PIAUTH`` keys are kept) and ``fake.url`` is its URL."""
    fake = FakePiPlatform(server_api_key=_configured_key())
    with LoopbackServer(fake) as server:
        fake.url = server.url
        settings.PIAUTH = {**(getattr(settings, "PIAUTH", None) or {}), "PI_API_URL": server.url}
        yield fake


def _peerid_for(settings: Any) -> FakePeerID:
    """A :class:`FakePeerID` whose app is the configured one; fills in what is missing."""
    from django_piauth.conf import piauth_settings

    client_id = piauth_settings.PEERID_CLIENT_ID
    client_secret = piauth_settings.PEERID_CLIENT_SECRET
    fake = FakePeerID(
        DEFAULT_PEERID_CLIENT_ID if client_id is None else client_id,
        client_secret or DEFAULT_PEERID_CLIENT_SECRET,
    )
    missing: dict[str, Any] = {}
    if client_id is None:
        missing["PEERID_CLIENT_ID"] = fake.client_id
    if not client_secret:
        missing["PEERID_CLIENT_SECRET"] = fake.client_secret
    if missing:
        settings.PIAUTH = {**(getattr(settings, "PIAUTH", None) or {}), **missing}
    return fake


@pytest.fixture
def fake_peerid(piauth_responses: responses.RequestsMock,
                settings: Any) -> Iterator[FakePeerID]:
    """A :class:`FakePeerID` served through ``responses`` at ``PIAUTH["PEERID_URL"]``."""
    from django_piauth.conf import piauth_settings

    fake = _peerid_for(settings)
    fake.url = piauth_settings.PEERID_URL.rstrip("/")
    serve_with_responses(fake, piauth_responses, fake.url)
    yield fake


@pytest.fixture
def live_fake_peerid(settings: Any, piauth_clean: None) -> Iterator[FakePeerID]:
    """A :class:`FakePeerID` on a real loopback server; ``PIAUTH["PEERID_URL"]`` points at
    it for the test (other ``PIAUTH`` keys are kept) and ``fake.url`` is its URL."""
    fake = _peerid_for(settings)
    with LoopbackServer(fake) as server:
        fake.url = server.url
        settings.PIAUTH = {**(getattr(settings, "PIAUTH", None) or {}), "PEERID_URL": server.url}
        yield fake


@pytest.fixture
def fake_safe(piauth_responses: responses.RequestsMock) -> Iterator[FakeSafeLauncher]:
    """A :class:`FakeSafeLauncher` served through ``responses`` at
    ``PIAUTH["SAFE_LAUNCHER_URL"]`` (``http://localhost:8100`` unless set)."""
    from django_piauth.conf import piauth_settings

    fake = FakeSafeLauncher()
    fake.url = piauth_settings.SAFE_LAUNCHER_URL.rstrip("/")
    serve_with_responses(fake, piauth_responses, fake.url)
    yield fake


@pytest.fixture
def live_fake_safe(settings: Any, piauth_clean: None) -> Iterator[FakeSafeLauncher]:
    """A :class:`FakeSafeLauncher` on a real loopback server; ``PIAUTH["SAFE_LAUNCHER_URL"]``
    points at it for the test (other ``PIAUTH`` keys are kept) and ``fake.url`` is its URL."""
    fake = FakeSafeLauncher()
    with LoopbackServer(fake) as server:
        fake.url = server.url
        settings.PIAUTH = {**(getattr(settings, "PIAUTH", None) or {}),
                           "SAFE_LAUNCHER_URL": server.url}
        yield fake
