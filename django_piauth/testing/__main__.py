"""Run a fake Pi Platform on loopback for the demo.

    python -m django_piauth.testing [--host 127.0.0.1] [--port 8765] [--latency-ms 0]

Prints its URL, then serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .pi import DEFAULT_SERVER_API_KEY, ME_SHAPES, FakePiPlatform
from .server import LoopbackServer, loopback_address


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_piauth.testing",
        description="Serve a fake Pi Platform API on a loopback address.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=int, default=0,
                        help="milliseconds added to every answer")
    parser.add_argument("--server-api-key",
                        default=os.environ.get("FAKE_PI_SERVER_API_KEY", DEFAULT_SERVER_API_KEY),
                        help="the Server API Key to accept "
                             "(default: $FAKE_PI_SERVER_API_KEY or %(default)r)")
    parser.add_argument("--me-shape", choices=ME_SHAPES, default="official",
                        help="the /v2/me body shape")
    parser.add_argument("--uid-seed", default="django-piauth-demo",
                        help="usernames get the same uid in every run with the same seed")
    parser.add_argument("--verbose", action="store_true", help="print every request line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        loopback_address(args.host)
    except ValueError as exc:
        parser.error(f"{exc}; the fake only listens on loopback")
    if not 0 <= args.port <= 65535:
        parser.error("--port is between 0 and 65535")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")

    fake = FakePiPlatform(server_api_key=args.server_api_key, me_shape=args.me_shape,
                          latency=args.latency_ms / 1000, uid_seed=args.uid_seed)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server = LoopbackServer(fake, args.host, args.port, log_requests=args.verbose).start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    fake.url = server.url
    print(f"Fake Pi Platform listening on {server.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    print("Fake Pi Platform stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
