"""Fake upstreams for tests and the demo: one behaviour, two ways to serve it.

- :class:`FakePiPlatform`: the Pi Platform API in memory (tokens, ``/v2/me``, payments,
  failure injection, a call log without secrets).
- :func:`serve_with_responses`: answer through ``responses`` (imported lazily).
- :class:`LoopbackServer`: answer over real HTTP on 127.0.0.1.
- ``django_piauth.testing.pytest_plugin``: the ``fake_pi`` and ``live_fake_pi`` fixtures.
- ``python -m django_piauth.testing``: a fake Pi Platform for the demo.
"""

from .base import DropConnection, FakeCall, FakeUpstream, FakeUpstreamBase, HandlerResult
from .pi import DEFAULT_SCOPES, DEFAULT_SERVER_API_KEY, FakePiPlatform
from .responses_adapter import serve_with_responses
from .server import LoopbackServer, loopback_address

__all__ = [
    "DEFAULT_SCOPES",
    "DEFAULT_SERVER_API_KEY",
    "DropConnection",
    "FakeCall",
    "FakePiPlatform",
    "FakeUpstream",
    "FakeUpstreamBase",
    "HandlerResult",
    "LoopbackServer",
    "loopback_address",
    "serve_with_responses",
]
