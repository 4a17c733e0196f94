"""Faults played on the wire by a :class:`~django_piauth.testing.server.LoopbackServer`:
what a broken or hostile upstream does that a status code and a body cannot say.

A fake upstream plays one with ``fake.fail_on_wire(Trickle(...))``: its ``handle`` raises
:class:`WireFault`, and the server hands the connection's socket to the fault. Served
through ``responses`` (no socket), a wire fault is a ``requests.ConnectionError``.

Each fault records how many bytes it managed to send (``sent``) and whether it got to
the end of what it meant to send (``finished``): a client that stops reading early, or
cuts the call off, leaves ``finished`` unset.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

#: Longest any fault keeps a connection busy, so a test that forgets one still ends.
MAX_SECONDS = 20.0


class WireFault(Exception):  # an instruction to the server, like DropConnection
    """Raised by ``handle``: let ``fault`` answer on the connection itself."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(type(fault).__name__)
        self.fault = fault


@dataclass
class Fault:
    """Base class: ``play`` writes to the connection; ``sent`` counts what got out."""

    sent: int = field(default=0, init=False)
    finished: threading.Event = field(default_factory=threading.Event, init=False)

    def play(self, connection: socket.socket, stopping: threading.Event) -> None:
        try:
            self.write(connection, stopping)
        except OSError:
            return  # the client hung up or cut the call off
        self.finished.set()

    def write(self, connection: socket.socket, stopping: threading.Event) -> None:
        raise NotImplementedError

    def _send(self, connection: socket.socket, data: bytes) -> None:
        connection.sendall(data)
        self.sent += len(data)


def _head(status: str = "200 OK", *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", *headers,
             "Connection: close", "", ""]
    return "\r\n".join(lines).encode()


@dataclass
class Hang(Fault):
    """Read the request, then never answer (until the client hangs up or the server
    stops)."""

    def write(self, connection: socket.socket, stopping: threading.Event) -> None:
        until = time.monotonic() + MAX_SECONDS
        while not stopping.is_set() and time.monotonic() < until:
            readable, _w, _x = select.select([connection], [], [], 0.05)
            if readable and not connection.recv(1, socket.MSG_PEEK):
                return  # the client hung up


@dataclass
class TrickleHeaders(Fault):
    """A status line, then header bytes one at a time, every ``interval`` seconds: each
    read gets something, so no read timeout ever fires."""

    interval: float = 0.05

    def write(self, connection: socket.socket, stopping: threading.Event) -> None:
        self._send(connection, b"HTTP/1.1 200 OK\r\nX-Slow: ")
        until = time.monotonic() + MAX_SECONDS
        while not stopping.wait(self.interval) and time.monotonic() < until:
            self._send(connection, b"a")


@dataclass
class TrickleBody(Fault):
    """Whole headers, then a JSON body one byte every ``interval`` seconds."""

    interval: float = 0.05

    def write(self, connection: socket.socket, stopping: threading.Event) -> None:
        body = b'{"uid": "' + b"u" * 1000 + b'"}'
        self._send(connection, _head("200 OK", f"Content-Length: {len(body)}"))
        for index in range(len(body)):
            if stopping.wait(self.interval):
                return
            self._send(connection, body[index:index + 1])


@dataclass
class ResetMidBody(Fault):
    """Headers declaring 2000 bytes, 100 of them, then a TCP reset."""

    def write(self, connection: socket.socket, stopping: threading.Event) -> None:
        self._send(connection, _head("200 OK", "Content-Length: 2000") + b'{"uid": "' + b"u" * 91)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()


@dataclass
class ShortBody(Fault):
    """``Content-Length: 2000`` and 100 bytes, then the connection closed cleanly."""

    def write(self, connection: socket.socket, stopping: threading.Event) -> None:
        self._send(connection, _head("200 OK", "Content-Length: 2000") + b'{"uid": "' + b"u" * 91)
        connection.shutdown(socket.SHUT_RDWR)


@dataclass
class TruncatedChunks(Fault):
    """A chunked body that stops in the middle of a chunk, then a clean close."""

    def write(self, connection: socket.socket, stopping: threading.Event) -> None:
        self._send(connection, _head("200 OK", "Transfer-Encoding: chunked")
                   + b"400\r\n" + b'{"uid": "' + b"u" * 91)
        connection.shutdown(socket.SHUT_RDWR)


@dataclass
class Oversized(Fault):
    """A body of ``total`` bytes (with or without a ``Content-Length``), written as fast
    as the client takes it. ``sent`` shows how much the client let through."""

    total: int = 32 * 1024 * 1024
    declare_length: bool = True

    def write(self, connection: socket.socket, stopping: threading.Event) -> None:
        length = f"Content-Length: {self.total}" if self.declare_length else "X-No-Length: 1"
        # A small send buffer: what the client did not read stays here, not in the kernel.
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        self._send(connection, _head("200 OK", length) + b'{"pad": "')
        chunk = b"x" * (64 * 1024)
        remaining = self.total
        while remaining > 0 and not stopping.is_set():
            piece = chunk[:remaining]
            self._send(connection, piece)
            remaining -= len(piece)
