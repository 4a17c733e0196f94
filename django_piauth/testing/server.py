"""A real HTTP server on a loopback address for any fake upstream.

``with LoopbackServer(FakePiPlatform()) as server: requests.get(server.url + "/v2/me")``.
HTTP/1.1 with keep-alive, one daemon thread per connection, quiet unless asked.
It binds to loopback addresses only.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from .base import DropConnection, FakeUpstream, HandlerResult, json_response
from .faults import WireFault

logger = logging.getLogger("django_piauth.testing")

# Headers the server owns: whatever a fake says about them is replaced.
_HOP_BY_HOP = {"content-length", "connection", "transfer-encoding", "keep-alive", "date",
               "server"}


def loopback_address(host: str) -> tuple[socket.AddressFamily, str]:
    """The address family and literal address of ``host``; ``ValueError`` if not loopback.

    Accepts ``localhost`` (as 127.0.0.1) and loopback IP literals; no name is resolved.
    """
    if host.lower() == "localhost":
        return socket.AF_INET, "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError(f"{host!r} is not a loopback address") from None
    if not address.is_loopback:
        raise ValueError(f"{host!r} is not a loopback address")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return family, str(address)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default backlog of 5 makes a burst of new connections wait a
    # second for a SYN retry; tests open dozens at once.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily,
                 owner: LoopbackServer) -> None:
        self.address_family = family
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        #: Set when the server stops: wire faults that hang or trickle end then.
        self.stopping = threading.Event()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look the host's name up (getfqdn): skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive connections so their threads finish."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (e.g. after its own timeout) is not an error worth a trace.
        logger.debug("connection from %s ended abruptly", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, the body of an answer on a
    # reused connection waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        # An idle keep-alive connection ends after this many seconds.
        self.connection.settimeout(self.server.owner.idle_timeout)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.owner.log_requests:
            super().log_message(format, *args)

    def _serve(self) -> None:
        owner = self.server.owner
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._answer(json_response(411, {"error": "length_required"}), close=True)
            return
        raw_length = self.headers.get("Content-Length", "0").strip() or "0"
        if not raw_length.isdigit():
            self._answer(json_response(400, {"error": "bad_content_length"}), close=True)
            return
        length = int(raw_length)
        if length > owner.max_body_bytes:
            self._answer(json_response(413, {"error": "body_too_large"}), close=True)
            return
        body = self.rfile.read(length) if length else b""
        headers = {name: value for name, value in self.headers.items()}
        try:
            result = owner.app.handle(self.command, self.path, headers, body)
        except DropConnection:
            self.close_connection = True
            return
        except WireFault as wire:
            self.close_connection = True
            wire.fault.play(self.connection, self.server.stopping)
            return
        except Exception:
            logger.exception("the fake upstream failed on %s %s", self.command,
                             self.path.partition("?")[0])
            result = json_response(500, {"error": "fake_failed",
                                         "error_message": "the fake upstream raised"})
        self._answer(result)

    def _answer(self, result: HandlerResult, *, close: bool = False) -> None:
        status, headers, body = result
        try:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class LoopbackServer:
    """Serve ``app`` (anything with the ``handle`` method of :class:`FakeUpstream`) over HTTP.

    ``port=0`` picks a free port. ``log_requests`` prints request lines to stderr.
    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        app: FakeUpstream,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_requests: bool = False,
        max_body_bytes: int = 1024 * 1024,
        idle_timeout: float = 30.0,
    ) -> None:
        self.app = app
        self._family, self._host = loopback_address(host)
        self._requested_port = port
        self.log_requests = log_requests
        self.max_body_bytes = max_body_bytes
        self.idle_timeout = idle_timeout
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = self.url if self._server is not None else "stopped"
        return f"<LoopbackServer {state} serving {type(self.app).__name__}>"

    @property
    def host(self) -> str:
        """The loopback address served on."""
        return self._host

    @property
    def port(self) -> int:
        """The port served on (known once started)."""
        if self._server is None:
            raise RuntimeError("the server is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        host = f"[{self._host}]" if self._family == socket.AF_INET6 else self._host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._server is not None

    def start(self) -> Self:
        """Bind and start serving in a daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("the server is already running")
        server = _Server((self._host, self._requested_port), self._family, self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"LoopbackServer:{server.server_address[1]}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and release the port. Idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
