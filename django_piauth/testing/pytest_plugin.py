"""pytest fixtures for the fake upstreams.

Load them in your ``conftest.py``::

    pytest_plugins = ["django_piauth.testing.pytest_plugin"]

``fake_pi`` answers at ``PIAUTH["PI_API_URL"]`` through ``responses`` (no socket);
``live_fake_pi`` runs a real server on 127.0.0.1 and points ``PI_API_URL`` at it.
Both accept the configured ``PI_SERVER_API_KEY`` (``"fake-server-api-key"`` if none).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .pi import DEFAULT_SERVER_API_KEY, FakePiPlatform
from .responses_adapter import LOOPBACK_URLS, serve_with_responses
from .server import LoopbackServer


def _configured_key() -> str:
    from django_piauth.conf import piauth_settings

    return piauth_settings.PI_SERVER_API_KEY or DEFAULT_SERVER_API_KEY


@pytest.fixture
def fake_pi() -> Iterator[FakePiPlatform]:
    """A :class:`FakePiPlatform` served through ``responses`` at ``PIAUTH["PI_API_URL"]``.

    Any other non-loopback request fails with ``ConnectionError``; loopback URLs pass
    through, so live fakes can be used alongside.
    """
    import responses

    from django_piauth.conf import piauth_settings

    fake = FakePiPlatform(server_api_key=_configured_key())
    fake.url = piauth_settings.PI_API_URL.rstrip("/")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(LOOPBACK_URLS)
        serve_with_responses(fake, rsps, fake.url)
        yield fake


@pytest.fixture
def live_fake_pi(settings: Any) -> Iterator[FakePiPlatform]:
    """A :class:`FakePiPlatform` on a real loopback server; ``PIAUTH["PI_API_URL"]`` points
    at it for the test (other ``PIAUTH`` keys are kept) and ``fake.url`` is its URL."""
    fake = FakePiPlatform(server_api_key=_configured_key())
    with LoopbackServer(fake) as server:
        fake.url = server.url
        settings.PIAUTH = {**(getattr(settings, "PIAUTH", None) or {}), "PI_API_URL": server.url}
        yield fake
