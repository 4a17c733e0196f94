"""Serve a fake upstream through the ``responses`` library: no socket, no thread.

``responses`` is imported only when :func:`serve_with_responses` is called, so importing
:mod:`django_piauth.testing` never needs it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .base import DropConnection, FakeUpstream
from .faults import WireFault

if TYPE_CHECKING:
    import requests
    import responses

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
LOOPBACK_URLS = re.compile(r"https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?([/?#].*)?$")
"""Matches URLs on loopback; the fixtures let those through to live fake servers."""


def _read_timeout(request: requests.PreparedRequest) -> float | None:
    """The read timeout the client passed to ``requests`` (``responses`` records it)."""
    timeout = getattr(request, "req_kwargs", {}).get("timeout")
    if isinstance(timeout, tuple):
        timeout = timeout[1] if len(timeout) > 1 else timeout[0]
    return float(timeout) if isinstance(timeout, int | float) else None


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if hasattr(body, "read"):
        data = body.read()
        return data.encode() if isinstance(data, str) else bytes(data)
    return b"".join(chunk.encode() if isinstance(chunk, str) else chunk for chunk in body)


def serve_with_responses(
    fake: FakeUpstream,
    rsps: responses.RequestsMock,
    base_url: str = "https://api.minepi.com",
) -> None:
    """Route every request under ``base_url`` (any method) to ``fake.handle``.

    The path given to the fake is relative to ``base_url``'s own path and keeps the query
    string. A :class:`DropConnection` becomes ``requests.ConnectionError``, a
    :class:`TimeoutError` becomes ``requests.ReadTimeout``.
    """
    import requests

    base = base_url.rstrip("/")
    prefix = urlsplit(base).path
    pattern = re.compile(re.escape(base) + r"(?:[/?#].*)?$")

    def callback(request: requests.PreparedRequest) -> Any:
        parts = urlsplit(request.url or "")
        path = parts.path[len(prefix):] if prefix and parts.path.startswith(prefix) \
            else parts.path
        path = (path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            return fake.handle(
                request.method or "GET",
                path,
                dict(request.headers),
                _body_bytes(request.body),
                timeout=_read_timeout(request),
            )
        except (DropConnection, WireFault):
            return requests.ConnectionError("the fake upstream dropped the connection",
                                            request=request)
        except TimeoutError:
            return requests.ReadTimeout("the fake upstream did not answer in time",
                                        request=request)

    for method in _METHODS:
        rsps.add_callback(method, pattern, callback=callback, content_type=None)
