"""A deadline on a whole upstream call, however slowly the upstream answers.

requests' read timeout bounds each socket read, not the call: an upstream that drips a
byte a second (into the status line, the headers or the body) is never cut off.
Checking the clock between chunks is not enough either, since a read blocks until its
bytes arrive. So one watchdog thread per process keeps the deadlines of the calls in
flight and, when one passes, shuts down that call's socket: the blocked read returns at
once and :func:`~django_piauth.providers.http.send` reports the call as not answered in
time.

The socket is found through urllib3's connection objects: the pools that
:func:`watched_pool_classes` names make connections that register themselves with the
calling thread's deadline when they connect and when they send a request. Under
``responses`` (no connection, no socket) a deadline is armed and released and does
nothing else. On the normal path a call costs one lock, one heap push and a
thread-local lookup, a few microseconds.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import socket
import threading
import time
from contextlib import suppress
from types import TracebackType
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class DeadlineExceeded(TimeoutError):
    """The call's deadline passed; its socket was shut down."""


class Deadline:
    """One call's deadline; a context manager that makes it the calling thread's own.

    ``expired`` is True once the watchdog cut the call off; a cut call's connection is
    closed, never reused.
    """

    __slots__ = ("at", "connection", "expired", "finished", "seconds", "sock")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.connection: HTTPConnection | None = None
        #: The connection's socket, kept: http.client lets go of it (``sock = None``)
        #: once it has the headers of an answer that closes the connection, while the
        #: body is still being read from it.
        self.sock: Any = None
        self.expired = False
        self.finished = False

    def __enter__(self) -> Deadline:
        _watchdog.watch(self)
        _current.deadline = self
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _current.deadline = None
        connection = _watchdog.release(self)
        if self.expired and connection is not None:
            with suppress(Exception):
                connection.close()


_current = threading.local()


def _cut(sock: Any) -> None:
    """Shut the socket down: a read blocked on it returns at once."""
    if sock is None:
        return
    with suppress(OSError):
        if isinstance(sock, socket.socket):
            # socket.socket's own shutdown: an SSLSocket's would drop its TLS object
            # under the feet of the thread reading from it.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        else:  # urllib3's TLS-in-TLS transport
            sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """The deadlines of the calls in flight, earliest first, and the thread that cuts
    off the calls that run past theirs. Finished calls leave the heap lazily."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        #: When the thread looks at the heap next on its own (its wait's end): a deadline
        #: no earlier than that needs no wake-up. Waking it for every call cost a thread
        #: switch per upstream call (12% of a sync worker's time on a sign-in, sampled).
        self._looks_at = math.inf

    def watch(self, deadline: Deadline) -> None:
        with self._condition:
            heap = self._heap
            while heap and heap[0][2].finished:  # keep the heap as small as the load
                heapq.heappop(heap)
            heapq.heappush(heap, (deadline.at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="django_piauth upstream deadlines")
                self._thread.start()
            elif deadline.at < self._looks_at:  # earlier than the thread's next look
                self._condition.notify()

    def attach(self, deadline: Deadline, connection: HTTPConnection) -> None:
        with self._condition:
            if deadline.finished:
                return
            deadline.connection = connection
            if connection.sock is not None:
                deadline.sock = connection.sock
            if deadline.expired:  # it passed while the connection was being made
                _cut(deadline.sock)

    def release(self, deadline: Deadline) -> HTTPConnection | None:
        with self._condition:
            deadline.finished = True
            connection, deadline.connection, deadline.sock = deadline.connection, None, None
            return connection

    def _run(self) -> None:
        with self._condition:
            while True:
                heap = self._heap
                while heap and heap[0][2].finished:
                    heapq.heappop(heap)
                if not heap:
                    self._looks_at = math.inf
                    self._condition.wait()
                    continue
                wait = heap[0][0] - time.monotonic()
                if wait > 0:
                    self._looks_at = heap[0][0]
                    self._condition.wait(wait)
                    continue
                self._looks_at = -math.inf  # looking now: a watch() meanwhile wakes it
                deadline = heapq.heappop(heap)[2]
                deadline.expired = True
                _cut(deadline.sock)


_watchdog = _Watchdog()


def _new_watchdog_in_child() -> None:
    global _watchdog
    _watchdog = _Watchdog()  # the parent's thread does not exist in a forked child


os.register_at_fork(after_in_child=_new_watchdog_in_child)


def _watch_connection(connection: HTTPConnection) -> None:
    deadline: Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        _watchdog.attach(deadline, connection)


class _Watched:
    """Registers the connection with the calling thread's deadline, if any."""

    def connect(self) -> None:
        _watch_connection(self)  # type: ignore[arg-type]
        super().connect()  # type: ignore[misc]
        _watch_connection(self)  # type: ignore[arg-type]  # a deadline passed meanwhile

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch_connection(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


def watched_pool_classes() -> dict[str, type[HTTPConnectionPool]]:
    """``PoolManager.pool_classes_by_scheme`` for connections a deadline can cut."""
    return {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}
