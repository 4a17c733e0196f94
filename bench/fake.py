"""The benchmark's upstream: django_piauth's fake Pi Platform in its own process.

    python -m bench.fake --port N [--latency-ms M]

On top of the fake's own routes it answers a few control routes that neither count as
calls nor wait for the configured latency:

- ``GET  /_bench/stats``: ``{"calls": {path: count}, "me_tokens": n}`` since start, where
  ``me_tokens`` is how many distinct bearer tokens ``/v2/me`` was asked about;
- ``POST /_bench/latency`` ``{"ms": 20}``: the latency of every other answer from now on;
- ``POST /_bench/tokens`` ``{"usernames": [...]}``: ``{"tokens": [...]}``, one fresh
  access token per username, in order (the cold rows issue hundreds at once).

Listens on 127.0.0.1 only, with Nagle's algorithm off (see ``_Handler`` below).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections import Counter
from collections.abc import Mapping
from types import FrameType

from django_piauth.testing import FakePiPlatform, LoopbackServer
from django_piauth.testing.base import HandlerResult, json_response

CONTROL_PREFIX = "/_bench/"
# The base class keeps every call in a list; the benchmark only needs counts.
_TRIM_CALL_LOG_EVERY = 4096


class BenchPiPlatform(FakePiPlatform):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._counts: Counter[str] = Counter()
        self._me_tokens: set[str] = set()
        self._counts_lock = threading.Lock()

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes, *,
               timeout: float | None = None) -> HandlerResult:
        bare = path.partition("?")[0]
        if bare.startswith(CONTROL_PREFIX):
            return self._control(method.upper(), bare, body)
        with self._counts_lock:
            self._counts[bare] += 1
            if bare == "/v2/me":
                authorization = {k.lower(): v for k, v in headers.items()}.get("authorization")
                self._me_tokens.add(str(authorization))
            trim = sum(self._counts.values()) % _TRIM_CALL_LOG_EVERY == 0
        if trim:
            self.reset_calls()
        return super().handle(method, path, headers, body, timeout=timeout)

    def _control(self, method: str, path: str, body: bytes) -> HandlerResult:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return json_response(400, {"error": "body is not JSON"})
        if path == "/_bench/stats" and method == "GET":
            with self._counts_lock:
                return json_response(200, {"calls": dict(self._counts),
                                           "me_tokens": len(self._me_tokens)})
        if path == "/_bench/latency" and method == "POST":
            self.latency = float(data["ms"]) / 1000
            return json_response(200, {"latency_ms": self.latency * 1000})
        if path == "/_bench/tokens" and method == "POST":
            tokens = [self.issue_token(username=name) for name in data["usernames"]]
            return json_response(200, {"tokens": tokens})
        return json_response(404, {"error": "no such control route"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fake")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)

    fake = BenchPiPlatform(latency=args.latency_ms / 1000, uid_seed="django-piauth-bench")
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server = LoopbackServer(fake, "127.0.0.1", args.port).start()
    fake.url = server.url
    print(f"bench fake upstream on {server.url}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
