"""Run a fake Pi Platform and a fake PeerID on loopback for the demo.

    python -m django_piauth.testing [--host 127.0.0.1] [--port 8765] [--latency-ms 0]
                                    [--peerid-port 8766] [--peerid-user alice] ...

Prints the fake Pi Platform's URL first, then the fake PeerID's URL, its app's client id
and secret and the demo user; then serves until Ctrl-C or SIGTERM. ``--peerid-port 0``
runs the Pi Platform alone.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from .peerid import DEFAULT_PEERID_CLIENT_ID, DEFAULT_PEERID_CLIENT_SECRET, FakePeerID
from .pi import DEFAULT_SERVER_API_KEY, ME_SHAPES, FakePiPlatform
from .server import LoopbackServer, loopback_address


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_piauth.testing",
        description="Serve a fake Pi Platform API and a fake PeerID on a loopback address.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--port", type=int, default=8765,
                        help="the Pi Platform's port; 0 picks a free port")
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
    peerid = parser.add_argument_group("fake PeerID")
    peerid.add_argument("--peerid-port", type=int, default=8766,
                        help="the fake PeerID's port; 0 does not run it (default: %(default)s)")
    peerid.add_argument("--peerid-client-id", type=int,
                        default=int(os.environ.get("FAKE_PEERID_CLIENT_ID",
                                                   DEFAULT_PEERID_CLIENT_ID)),
                        help="the app's client id (default: $FAKE_PEERID_CLIENT_ID or "
                             "%(default)s)")
    peerid.add_argument("--peerid-client-secret",
                        default=os.environ.get("FAKE_PEERID_CLIENT_SECRET",
                                               DEFAULT_PEERID_CLIENT_SECRET),
                        help="the app's client secret (default: $FAKE_PEERID_CLIENT_SECRET "
                             "or %(default)r)")
    peerid.add_argument("--peerid-user", default="alice", help="the demo user's login")
    peerid.add_argument("--peerid-password", default="alice-demo",
                        help="the demo user's password")
    peerid.add_argument("--peerid-mobile", default=None,
                        help="the demo user's mobile number (none by default)")
    peerid.add_argument("--peerid-access-lifetime", type=float, default=3600,
                        help="seconds an access token lives (default: %(default)s)")
    peerid.add_argument("--peerid-auto-approve", action="store_true",
                        help="/permissions approves for the demo user without a form")
    horizon = parser.add_argument_group("fake Horizon (payouts; needs stellar-sdk)")
    horizon.add_argument("--horizon-port", type=int, default=0,
                         help="the fake Horizon's port; 0 does not run it (default)")
    horizon.add_argument("--app-wallet", default=None,
                         help="the app wallet's address (G...): the public key of the site's "
                              "PI_WALLET_SEED; it gets an account with 1,000,000 Pi")
    parser.add_argument("--verbose", action="store_true", help="print every request line")
    return parser


def _listen(app: Any, host: str, port: int,
            verbose: bool) -> LoopbackServer | None:
    try:
        return LoopbackServer(app, host, port, log_requests=verbose).start()
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return None


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
    if not 0 <= args.peerid_port <= 65535:
        parser.error("--peerid-port is between 0 and 65535 (0: no fake PeerID)")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    if args.peerid_access_lifetime <= 0:
        parser.error("--peerid-access-lifetime must be positive")
    if not args.peerid_client_secret:
        parser.error("--peerid-client-secret must not be empty")
    if not 0 <= args.horizon_port <= 65535:
        parser.error("--horizon-port is between 0 and 65535 (0: no fake Horizon)")
    if args.horizon_port and not (isinstance(args.app_wallet, str) and len(args.app_wallet) == 56
                                  and args.app_wallet.startswith("G")):
        parser.error("--horizon-port needs --app-wallet, an account id (G..., 56 characters)")

    latency = args.latency_ms / 1000
    fake = FakePiPlatform(server_api_key=args.server_api_key, me_shape=args.me_shape,
                          latency=latency, uid_seed=args.uid_seed)
    peerid: FakePeerID | None = None
    if args.peerid_port:
        peerid = FakePeerID(args.peerid_client_id, args.peerid_client_secret,
                            access_lifetime=args.peerid_access_lifetime, latency=latency)
        demo_user = peerid.add_user(args.peerid_user, args.peerid_password,
                                    mobile=args.peerid_mobile)
        if args.peerid_auto_approve:
            peerid.browser_user = demo_user
    horizon = None
    if args.horizon_port:
        from .horizon import FakeHorizon

        fake.app_wallet = args.app_wallet
        horizon = FakeHorizon(fake.network, platform=fake, open_pioneer_accounts=True,
                              latency=latency)
        horizon.create_account(args.app_wallet, balance=1_000_000)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server = _listen(fake, args.host, args.port, args.verbose)
    if server is None:
        return 1
    fake.url = server.url
    print(f"Fake Pi Platform listening on {server.url}", flush=True)
    peerid_server = None
    if peerid is not None:
        peerid_server = _listen(peerid, args.host, args.peerid_port, args.verbose)
        if peerid_server is None:
            print("(--peerid-port 0 runs the Pi Platform alone)", file=sys.stderr)
            server.stop()
            return 1
        peerid.url = peerid_server.url
        print(f"Fake PeerID listening on {peerid_server.url}\n"
              f"  PeerID client id: {peerid.client_id}  client secret: {peerid.client_secret}\n"
              f"  PeerID demo user: {args.peerid_user}  password: {args.peerid_password}"
              + (f"  mobile: {args.peerid_mobile}" if args.peerid_mobile else ""),
              flush=True)
    horizon_server = None
    if horizon is not None:
        horizon_server = _listen(horizon, args.host, args.horizon_port, args.verbose)
        if horizon_server is None:
            server.stop()
            if peerid_server is not None:
                peerid_server.stop()
            return 1
        horizon.url = horizon_server.url
        print(f"Fake Horizon listening on {horizon_server.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        if horizon_server is not None:
            horizon_server.stop()
        if peerid_server is not None:
            peerid_server.stop()
        server.stop()
    if peerid_server is not None:
        print("Fake PeerID stopped", flush=True)
    print("Fake Pi Platform stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
