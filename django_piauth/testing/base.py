"""What every fake upstream shares: the ``handle`` protocol, failure injection, the call log.

A fake upstream is any object with
``handle(method, path, headers, body, *, timeout=None) -> (status, headers, body)``.
:class:`~django_piauth.testing.server.LoopbackServer` serves one over real HTTP and
:func:`~django_piauth.testing.responses_adapter.serve_with_responses` through ``responses``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .faults import Fault

#: What ``handle`` returns: status, response headers, body.
HandlerResult = tuple[int, dict[str, str], bytes]

JSON_CONTENT_TYPE = "application/json"

# Authorization schemes recorded by name; anything else is recorded as "other", so a
# bare secret sent without a scheme never lands in the call log.
_KNOWN_SCHEMES = {"bearer": "Bearer", "key": "Key", "basic": "Basic", "token": "Token"}


@runtime_checkable
class FakeUpstream(Protocol):
    """An in-memory upstream that both ways of serving can route requests to."""

    def handle(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        timeout: float | None = None,
    ) -> HandlerResult:
        """Answer one request. ``path`` may carry a query string.

        ``timeout`` is the client's read timeout when the transport knows it (``responses``
        does): a fake raises :class:`TimeoutError` instead of sleeping past it. A fake
        raises :class:`DropConnection` to close the connection without an answer.
        """
        ...


class DropConnection(Exception):
    """Raised by ``handle``: close the connection without answering."""


@dataclass
class FakeCall:
    """One request a fake received. Holds the authorization *scheme*, never the credential."""

    method: str
    path: str
    auth_scheme: str | None
    at: float
    status: int | None = None
    """The status answered; ``None`` while in flight, or when the connection was dropped."""


def auth_scheme(authorization: str | None) -> str | None:
    """The scheme of an ``Authorization`` header value, safe to record."""
    if authorization is None:
        return None
    scheme, sep, _credential = authorization.strip().partition(" ")
    if not sep:
        return "other"
    return _KNOWN_SCHEMES.get(scheme.lower(), "other")


def json_response(status: int, payload: Any,
                  headers: Mapping[str, str] | None = None) -> HandlerResult:
    """A JSON answer."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return status, {"Content-Type": JSON_CONTENT_TYPE, **(headers or {})}, body


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers with lower-case names, for case-insensitive lookups."""
    return {str(name).lower(): str(value) for name, value in headers.items()}


def path_matches(pattern: str | None, path: str) -> bool:
    """``pattern`` is ``None`` (every path), a path, or a prefix of whole segments."""
    if pattern is None:
        return True
    prefix = pattern.rstrip("/")
    return path in (pattern, prefix) or path.startswith(prefix + "/")


@dataclass
class _Rule:
    kind: str  # "status", "garbage", "drop", "delay", "wire"
    remaining: int | None  # None: until cleared
    path: str | None
    status: int = 200
    body: bytes = b""
    content_type: str = JSON_CONTENT_TYPE
    seconds: float = 0.0
    headers: Mapping[str, str] | None = None
    fault: Fault | None = None


@dataclass
class _Plan:
    """What the injected failures decided for one call."""

    delay: float = 0.0
    answer: HandlerResult | None = None
    drop: bool = False
    fault: Fault | None = None


def _count(count: int | None) -> int | None:
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                              or count < 1):
        raise ValueError("count is a positive whole number, or None for 'until cleared'")
    return count


class FakeUpstreamBase:
    """Thread-safe failure injection and call recording for a fake upstream.

    Injected failures apply only to paths :meth:`injectable` accepts; each lasts for the
    next ``count`` matching calls, or until :meth:`clear_failures` when ``count`` is None.
    Delays add up and combine with one answer (a status, garbage or a dropped connection).
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        #: Seconds added to every answer (not to CORS preflights), e.g. for a demo.
        self.latency = latency
        #: Where the fake is being served; set by the fixtures and the command line.
        self.url: str | None = None
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.RLock()
        self._rules: list[_Rule] = []
        self._calls: list[FakeCall] = []

    def now(self) -> float:
        """The fake's clock in epoch seconds (``time.time`` unless a clock was given)."""
        return self._clock() if self._clock is not None else time.time()

    # Failure injection ------------------------------------------------------------

    def fail_with(self, status: int, body: bytes | str | Any = None, count: int | None = 1,
                  *, path: str | None = None,
                  content_type: str = JSON_CONTENT_TYPE,
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` calls with ``status`` (e.g. 401, 500, 503).

        ``body`` is bytes or text sent as is, any other value is sent as JSON; the default
        is a JSON error body. ``path`` limits the failure to one path or path prefix;
        ``headers`` are added to the answer (e.g. a ``Location`` for a 302).
        """
        if not 100 <= status <= 599:
            raise ValueError("status is an HTTP status code")
        if body is None:
            body = {"error": "injected_failure",
                    "error_message": f"HTTP {status} injected by the fake"}
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self._add(_Rule("status", _count(count), path, status=status, body=body,
                        content_type=content_type, headers=dict(headers or {})))

    def garbage(self, count: int | None = 1, *, path: str | None = None) -> None:
        """Answer the next ``count`` calls with 200 and a body that is not JSON."""
        self._add(_Rule("garbage", _count(count), path, status=200,
                        body=b"<html><body>502 Bad Gateway</body></html>",
                        content_type="text/html"))

    def drop_connection(self, count: int | None = 1, *, path: str | None = None) -> None:
        """Close the connection without answering the next ``count`` calls."""
        self._add(_Rule("drop", _count(count), path))

    def fail_on_wire(self, fault: Fault, count: int | None = 1, *,
                     path: str | None = None) -> None:
        """Let ``fault`` (see :mod:`~django_piauth.testing.faults`: hang, trickle, reset,
        a short or oversized body) answer the next ``count`` calls on the wire."""
        self._add(_Rule("wire", _count(count), path, fault=fault))

    def delay(self, seconds: float, count: int | None = None, *,
              path: str | None = None) -> None:
        """Sleep ``seconds`` before answering the next ``count`` calls (default: until cleared).

        Served through ``responses``, a delay longer than the client's read timeout raises
        ``requests.ReadTimeout`` at once instead of sleeping.
        """
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self._add(_Rule("delay", _count(count), path, seconds=float(seconds)))

    def clear_failures(self) -> None:
        """Forget every injected failure and delay."""
        with self._lock:
            self._rules.clear()

    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def injectable(self, path: str) -> bool:
        """Whether injected failures apply to ``path``; every path unless overridden."""
        return True

    def _plan(self, path: str) -> _Plan:
        """Consume the rules that match this call (with the lock held)."""
        plan = _Plan(delay=self.latency)
        if not self.injectable(path):
            return plan
        for rule in list(self._rules):
            if not path_matches(rule.path, path):
                continue
            if rule.kind == "delay":
                plan.delay += rule.seconds
            elif plan.answer is None and not plan.drop and plan.fault is None:
                if rule.kind == "drop":
                    plan.drop = True
                elif rule.kind == "wire":
                    plan.fault = rule.fault
                else:
                    plan.answer = (rule.status, {"Content-Type": rule.content_type,
                                                 **(rule.headers or {})}, rule.body)
            else:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
        return plan

    # Calls ----------------------------------------------------------------------

    @property
    def calls(self) -> list[FakeCall]:
        """A copy of the calls received so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def call_count(self, path: str | None = None, method: str | None = None) -> int:
        """How many calls reached ``path`` (exactly; every path when None) with ``method``."""
        with self._lock:
            return sum(
                1 for call in self._calls
                if (path is None or call.path == path)
                and (method is None or call.method == method.upper())
            )

    def reset_calls(self) -> None:
        """Forget the recorded calls."""
        with self._lock:
            self._calls.clear()

    # Serving --------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        timeout: float | None = None,
    ) -> HandlerResult:
        """Record the call, apply injected failures, then answer with :meth:`route`."""
        method = method.upper()
        path, _sep, query = path.partition("?")
        lowered = lower_headers(headers)
        preflight = method == "OPTIONS"
        with self._lock:
            call = FakeCall(method, path, auth_scheme(lowered.get("authorization")),
                            at=self.now())
            self._calls.append(call)
            plan = _Plan() if preflight else self._plan(path)
        if plan.delay > 0:
            if timeout is not None and plan.delay > timeout:
                raise TimeoutError(f"the fake was told to wait {plan.delay:g}s")
            (self._sleep or time.sleep)(plan.delay)
        if plan.drop:
            raise DropConnection(path)
        if plan.fault is not None:
            from .faults import WireFault

            raise WireFault(plan.fault)
        result = plan.answer or self.route(method, path, query, lowered, body or b"")
        with self._lock:
            call.status = result[0]
        return result

    def route(self, method: str, path: str, query: str, headers: Mapping[str, str],
              body: bytes) -> HandlerResult:
        """Answer one request; ``headers`` have lower-case names. Subclasses implement it."""
        return json_response(404, {"error": "not_found", "error_message": "no such route"})
