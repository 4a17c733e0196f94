"""Fake upstreams for tests and the demo: one behaviour, two ways to serve it.

- :class:`FakePiPlatform`: the Pi Platform API in memory (tokens, ``/v2/me``, payments,
  failure injection, a call log without secrets).
- :class:`FakePeerID`: a PeerID server in memory (password and code flows, rotating refresh
  tokens, the ``ClientID``-checked app routes, body-only parameters, failure injection).
- :class:`FakeSafeLauncher`: a SAFE Launcher in memory (a person who approves, denies or
  answers slowly, restarts that kill every token, the Launcher's 400 bodies).
- :class:`~django_piauth.testing.horizon.FakeHorizon`: the Pi blockchain's Horizon in
  memory (accounts, sequence numbers, Horizon's refusals), telling a fake Pi Platform of
  each landed payout (needs stellar-sdk: imported from ``django_piauth.testing.horizon``).
- :func:`serve_with_responses`: answer through ``responses`` (imported lazily).
- :class:`LoopbackServer`: answer over real HTTP on 127.0.0.1.
- ``django_piauth.testing.pytest_plugin``: the ``fake_pi``, ``live_fake_pi``,
  ``fake_peerid``, ``live_fake_peerid``, ``fake_safe`` and ``live_fake_safe`` fixtures.
- :func:`piauth_reset`: forget the package's cached verdicts and built clients (the
  fixtures call it at setup).
- ``python -m django_piauth.testing``: a fake Pi Platform and a fake PeerID for the demo.
"""

from .base import DropConnection, FakeCall, FakeUpstream, FakeUpstreamBase, HandlerResult
from .peerid import (
    DEFAULT_PEERID_CLIENT_ID,
    DEFAULT_PEERID_CLIENT_SECRET,
    DEFAULT_PEERID_SCOPE,
    OPERATION_IDS,
    FakePeerID,
)
from .pi import DEFAULT_SCOPES, DEFAULT_SERVER_API_KEY, FakePiPlatform
from .reset import piauth_reset
from .responses_adapter import serve_with_responses
from .safe import FakeSafeLauncher
from .server import LoopbackServer, loopback_address

__all__ = [
    "DEFAULT_PEERID_CLIENT_ID",
    "DEFAULT_PEERID_CLIENT_SECRET",
    "DEFAULT_PEERID_SCOPE",
    "DEFAULT_SCOPES",
    "DEFAULT_SERVER_API_KEY",
    "OPERATION_IDS",
    "DropConnection",
    "FakeCall",
    "FakePeerID",
    "FakePiPlatform",
    "FakeSafeLauncher",
    "FakeUpstream",
    "FakeUpstreamBase",
    "HandlerResult",
    "LoopbackServer",
    "loopback_address",
    "piauth_reset",
    "serve_with_responses",
]
