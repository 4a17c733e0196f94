"""Where an authentication's time goes, in one process, without gunicorn or wrk.

    .venv/bin/python -m bench.profile [--cprofile hot-locmem] [-n 5000]

Times ``authenticate()`` of DRF's TokenAuthentication and of PiAuthentication (hot and
cold token; locmem, and Redis when ``redis-server`` is on PATH) on the benchmark project's
settings, with the fake upstream in a thread at zero latency, plus the parts of the hot
path on their own. ``--cprofile CASE`` prints cProfile's view of one case. A quick check
of a change to django_piauth before a full ``bench/run``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def throwaway_redis(tmp: Path) -> Iterator[str | None]:
    if shutil.which("redis-server") is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def per_call_us(fn: Callable[[], object], number: int) -> float:
    fn()
    return min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("-n", type=int, default=3000, help="calls per timing")
    parser.add_argument("--cprofile", metavar="CASE", help="e.g. hot-locmem, new-redis")
    parser.add_argument("--sort", default="cumulative", help="pstats order (tottime, ...)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="piauth-profile-"))
    try:
        with throwaway_redis(tmp) as redis_url:
            return profile(args, tmp, redis_url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def profile(args: argparse.Namespace, tmp: Path, redis_url: str | None) -> int:
    from bench.fake import BenchPiPlatform
    from bench.signins import new_usernames
    from django_piauth.testing import LoopbackServer

    fake = BenchPiPlatform()
    server = LoopbackServer(fake).start()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.project.settings",
        BENCH_DB=str(tmp / "profile.sqlite3"),
        BENCH_FAKE_URL=server.url,
        BENCH_REDIS_URL=redis_url or "redis://127.0.0.1:1/0",
    )
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import caches
    from django.core.management import call_command
    from django.test import override_settings
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.authtoken.models import Token
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from django_piauth import verification
    from django_piauth.drf import PiAuthentication
    from django_piauth.models import Pioneer

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create(username="bench-drf-token")
    key = Token.objects.create(user=user).key
    factory = APIRequestFactory()

    def request(authorization: str) -> Request:
        return Request(factory.get("/pi", HTTP_AUTHORIZATION=authorization))

    token_auth, pi_auth = TokenAuthentication(), PiAuthentication()
    token_request = request(f"Token {key}")
    profiled: Callable[[], object] | None = None

    def timed(name: str, fn: Callable[[], object], number: int) -> None:
        nonlocal profiled
        print(f"{per_call_us(fn, number):9.1f}  {name}", flush=True)
        if name == args.cprofile:
            profiled = fn

    print(f"microseconds per call, best of 3 x {args.n} (cold: {args.n // 10}); "
          "the fake upstream in a thread, at 0 ms")
    timed("drf-token", lambda: token_auth.authenticate(token_request), args.n)
    timed("  query: Token.objects.select_related('user').get(key=...)",
          lambda: Token.objects.select_related("user").get(key=key), args.n)
    with contextlib.suppress(ImportError):  # bench/run installs mozilla-django-oidc
        from mozilla_django_oidc.contrib.drf import OIDCAuthentication

        oidc_auth = OIDCAuthentication()
        fake.issue_token(username="oidc-known")
        known = iter([fake.issue_token(username="oidc-known")
                      for _ in range(args.n // 10 * 4 + 10)])
        timed("oidc-known (mozilla-django-oidc: a known user's new token)",
              lambda tokens=known: oidc_auth.authenticate(request(f"Bearer {next(tokens)}")),
              args.n // 10)
        new_users = iter([fake.issue_token(username=name) for name in
                          new_usernames(args.n // 10 * 4 + 10, seed="profile-oidc")])
        timed("oidc-new (mozilla-django-oidc: a new user)",
              lambda tokens=new_users: oidc_auth.authenticate(
                  request(f"Bearer {next(tokens)}")), args.n // 10)
    aliases = ["locmem"] + (["redis"] if redis_url else [])
    for alias in aliases:
        with override_settings(PIAUTH={**settings.PIAUTH, "CACHE_ALIAS": alias}):
            hot = fake.issue_token(username=f"hot-{alias}")
            hot_request = request(f"Bearer {hot}")
            pi_auth.authenticate(hot_request)  # links the Pioneer and caches the token
            timed(f"hot-{alias}", lambda r=hot_request: pi_auth.authenticate(r), args.n)
            timed(f"  verify_pi_token (hot, {alias})",
                  lambda t=hot: verification.verify_pi_token(t), args.n)
            timed(f"  cache.get ({alias})",
                  lambda a=alias: caches[a].get(verification.verdict_key("0" * 64)), args.n)
            # Fresh tokens of the linked Pioneer: one upstream call each.
            cold = iter([fake.issue_token(username=f"hot-{alias}")
                         for _ in range(args.n // 10 * 4 + 10)])
            timed(f"cold-{alias}", lambda tokens=cold: pi_auth.authenticate(
                request(f"Bearer {next(tokens)}")), args.n // 10)
            # Tokens of people never seen: each call creates a User and its Pioneer.
            new = iter([fake.issue_token(username=name) for name in
                        new_usernames(args.n // 10 * 4 + 10, seed=f"profile-{alias}")])
            timed(f"new-{alias}", lambda tokens=new: pi_auth.authenticate(
                request(f"Bearer {next(tokens)}")), args.n // 10)
            if profiled is not None and args.cprofile.endswith(alias):
                if args.cprofile.startswith("new"):
                    new = iter([fake.issue_token(username=name) for name in
                                new_usernames(args.n // 10 + 10, seed=f"profiled-{alias}")])
                    profiled = (lambda tokens=new: pi_auth.authenticate(  # noqa: E731
                        request(f"Bearer {next(tokens)}")))
                number = args.n if args.cprofile.startswith("hot") else args.n // 10
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(number):
                    profiled()
                profiler.disable()
                pstats.Stats(profiler, stream=sys.stdout).sort_stats(
                    args.sort).print_stats(35)
    uid = Pioneer.objects.get(provider="pi", username="hot-locmem").uid
    timed("  query: Pioneer.objects.select_related('user').filter(...).first()",
          lambda: Pioneer.objects.select_related("user").filter(provider="pi", uid=uid)
          .first(), args.n)
    timed("  token_digest", lambda: verification.token_digest("x" * 43), args.n)
    timed("  check_token_format", lambda: verification.check_token_format("x" * 43), args.n)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
