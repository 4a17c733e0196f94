"""The HTTP plumbing every upstream client shares.

One pooled :class:`requests.Session` per process (re-made in a forked child, so
pre-forking servers never share sockets), an explicit timeout on every call, a
deadline on the whole call (:mod:`.deadline`), a cap on how many bytes of a response
are read, and URLs that cannot leave the configured upstream (:func:`join_url`).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import ProxyManager
from urllib3.util import parse_url

from ..conf import default_deadline
from ..exceptions import UpstreamUnavailable
from ..untrusted_json import NotJSON, loads
from .deadline import Deadline, DeadlineExceeded, watched_pool_classes

_session: requests.Session | None = None
_session_lock = threading.Lock()


def get_session() -> requests.Session:
    """The process's pooled session, made on first use."""
    global _session
    session = _session
    if session is None:
        with _session_lock:
            session = _session
            if session is None:
                session = requests.Session()
                # Enough connections for a threaded server's workers.
                adapter = _WatchedAdapter(pool_connections=8, pool_maxsize=64)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                # requests reads the whole environment twice per call for proxy settings
                # (about half a millisecond): read it once here unless proxies are set.
                session.trust_env = _proxies_in_environment()
                if not session.trust_env:
                    # What requests would have read per call, as it would read it.
                    session.verify = (os.environ.get("REQUESTS_CA_BUNDLE")
                                      or os.environ.get("CURL_CA_BUNDLE") or True)
                _session = session
    return session


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose connections a call's deadline can cut (SOCKS proxies aside)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = watched_pool_classes()

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):
            manager.pool_classes_by_scheme = watched_pool_classes()
        return manager


def _proxies_in_environment() -> bool:
    """Whether the environment names a proxy (``*_proxy``), which requests must resolve
    per URL (``no_proxy``)."""
    return any(name.lower().endswith("_proxy") for name in os.environ)


def _forget_session_in_child() -> None:
    global _session, _session_lock
    _session = None
    _session_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_session_in_child)


class OffSiteURL(ValueError):
    """A path that would take an upstream call (and its credential) off the configured
    upstream: another host, port or scheme, or outside the base URL's path."""


_FORBIDDEN_IN_PATH = frozenset("\\\x00\r\n\t ")


def _place(url: str) -> tuple[tuple[Any, ...], tuple[Any, ...], str]:
    """Where ``url`` goes, as urllib3 (which opens the connection) and urllib read it:
    (scheme, credentials, host, port) by each, and urllib3's normalized path."""
    ours, theirs = parse_url(url), urlsplit(url)
    port = theirs.port  # ValueError on a port that is not a number
    return ((ours.scheme, ours.auth, ours.host, ours.port),
            (theirs.scheme, theirs.username, theirs.password, theirs.hostname, port),
            ours.path or "/")


@functools.lru_cache(maxsize=512)
def join_url(base_url: str, path: str) -> str:
    """``base_url`` followed by ``path``: the one way every client builds an upstream URL.

    Refuses (:class:`OffSiteURL`) anything whose result is not on ``base_url``'s scheme,
    host and port, under its path: ``"@attacker.example/x"`` appended to
    ``https://api.minepi.com`` would send the Server API Key to ``attacker.example``.
    """
    base = base_url.rstrip("/")
    if (not path.startswith("/") or path.startswith("//")
            or not _FORBIDDEN_IN_PATH.isdisjoint(path)):
        raise OffSiteURL("an upstream path starts with one '/' and has no spaces, "
                         "backslashes or control characters")
    url = base + path
    try:
        base_place, base_split, base_path = _place(base + "/")
        url_place, url_split, url_path = _place(url)
    except ValueError as exc:
        raise OffSiteURL(f"the path does not make a usable URL on {base}") from exc
    if (url_place, url_split) != (base_place, base_split) or not url_path.startswith(base_path):
        raise OffSiteURL(f"the path leads off {base}")
    return url


@functools.lru_cache(maxsize=256)
def _checked_url(url: str) -> str:
    """requests' own URL preparation (validation, IDNA, quoting), done once per URL."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url or url


def _prepared(method: str, url: str, headers: dict[str, str] | None, json_body: Any,
              form_body: dict[str, Any] | None) -> requests.PreparedRequest:
    """The request to ``url`` (checked) as ``Session.prepare_request`` makes it, minus
    what we never want: no cookies carried from one user's call to the next, no
    ~/.netrc auth in place of our ``Authorization`` header."""
    prepared = requests.PreparedRequest()
    prepared.prepare_method(method)
    prepared.url = url
    prepared.prepare_headers(headers)
    prepared.prepare_body(form_body, None, json_body)
    return prepared


def _transport(session: requests.Session,
               url: str) -> tuple[MutableMapping[str, str], bool | str]:
    """The proxies and TLS verification for ``url``, as ``Session.request`` reads them."""
    # The stubs allow a session's verify to be None; get_session's never is (True or a CA
    # bundle path, and merging the environment onto it keeps it so).
    if session.trust_env:
        environment = session.merge_environment_settings(url, {}, True, None, None)
        return environment["proxies"], cast("bool | str", environment["verify"])
    return {}, cast("bool | str", session.verify)


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    body: bytes
    service: str = "upstream"

    @property
    def cannot_say(self) -> bool:
        """Neither 2xx nor 4xx: a 5xx, a 1xx, or a redirect (never followed: it could
        take the credential elsewhere) says nothing about what was asked."""
        return not (200 <= self.status < 300 or 400 <= self.status < 500)

    def json(self) -> Any:
        """The parsed body, or ``UpstreamUnavailable`` when it is not JSON we can read
        (deeply nested JSON included): the one parser of every upstream answer."""
        try:
            return loads(self.body)
        except NotJSON as exc:
            raise UpstreamUnavailable(
                f"{self.service} answered {self.status} with a body that is {exc}",
                service=self.service,
            ) from exc


def send(
    method: str,
    url: str,
    *,
    service: str,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    form_body: dict[str, Any] | None = None,
    timeout: tuple[float, float],
    deadline: float | None = None,
    max_bytes: int,
) -> UpstreamResponse:
    """Make one request and read at most ``max_bytes`` of the answer, all of it within
    ``deadline`` seconds (default :func:`default_deadline`).

    Connection errors, timeouts, a passed deadline and oversized answers raise
    ``UpstreamUnavailable`` naming ``service`` and the path, never the headers (they
    carry credentials).
    """
    with Deadline(deadline if deadline is not None else default_deadline(timeout)) as limit:
        try:
            status, body = _exchange(method, url, service, headers, json_body, form_body,
                                     timeout, max_bytes)
        except UpstreamUnavailable as exc:
            if limit.expired:
                raise _late(service, limit) from exc.__cause__
            raise
        if limit.expired:  # the cut may look like the end of a body without a length
            raise _late(service, limit)
    return UpstreamResponse(status=status, body=body, service=service)


def _late(service: str, limit: Deadline) -> UpstreamUnavailable:
    exc = UpstreamUnavailable(f"{service} did not answer in time", service=service)
    exc.__cause__ = DeadlineExceeded(f"the call took more than {limit.seconds:g} s")
    return exc


def _exchange(method: str, url: str, service: str, headers: dict[str, str] | None,
              json_body: Any, form_body: dict[str, Any] | None,
              timeout: tuple[float, float], max_bytes: int) -> tuple[int, bytes]:
    """The request and the bounded read of its answer: (status, body)."""
    # Straight to the transport adapter (which ``responses`` mocks): a session's own
    # send adds cookie handling, hooks and redirects we do not want, and a third of a
    # millisecond per call.
    session = get_session()
    try:
        checked_url = _checked_url(url)
        prepared = _prepared(method, checked_url, headers, json_body, form_body)
        proxies, verify = _transport(session, checked_url)
        response = session.get_adapter(checked_url).send(
            prepared, stream=True, timeout=timeout, verify=verify, cert=None, proxies=proxies)
    except requests.Timeout as exc:
        raise UpstreamUnavailable(f"{service} did not answer in time", service=service) from exc
    except requests.RequestException as exc:
        raise UpstreamUnavailable(
            f"{service} could not be reached ({type(exc).__name__})", service=service
        ) from exc
    with response:
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise UpstreamUnavailable(
                f"{service} answered with more than {max_bytes} bytes", service=service
            )
        chunks: list[bytes] = []
        received = 0
        try:
            for chunk in response.iter_content(chunk_size=16 * 1024):
                received += len(chunk)
                if received > max_bytes:
                    raise UpstreamUnavailable(
                        f"{service} answered with more than {max_bytes} bytes", service=service
                    )
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise UpstreamUnavailable(
                f"{service} broke off its answer ({type(exc).__name__})", service=service
            ) from exc
    return response.status_code, b"".join(chunks)
