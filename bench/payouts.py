"""Payouts per second from two worker processes against the fakes (issue 13).

    .venv/bin/python -m bench.payouts [--payouts 40] [--workers 2]

Starts the fake Pi Platform and the fake Horizon on 127.0.0.1 (threaded servers in this
process), a throwaway SQLite database (IMMEDIATE transactions) for ``bench/project``,
then ``--workers`` processes that call ``django_piauth.payments.pay`` for their share of
``--payouts`` Pioneers, all from one app wallet. It prints payouts per second and, as
the baseline measured in the same run, the rate the same number of upstream round trips
allows when made bare (``requests`` to the fakes, no Django, no database), from the same
number of processes; the ratio is what the package's own work (steps recorded, the
wallet's lease, signing) leaves of it. One wallet has one transaction in flight at a
time, so the workers queue on its lease by design.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

#: Upstream round trips of one payout: create, recipient account, wallet account, fee,
#: transaction lookup, recipient account again (before submitting), submit, complete.
CALLS_PER_PAYOUT = 8


def _django(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.project.settings"
    import django

    django.setup()


def _pay_share(env: dict[str, str], uids: list[str]) -> int:
    _django(env)
    from django_piauth.models import Pioneer
    from django_piauth.payments import pay

    done = 0
    for uid in uids:
        payment = pay(Pioneer.objects.get(provider="pi", uid=uid), Decimal("1.5"), "Bench")
        done += payment.status == "completed"
    return done


def _bare_calls(urls: list[str], count: int) -> int:
    import requests

    session = requests.Session()
    for index in range(count):
        session.get(urls[index % len(urls)], timeout=5).raise_for_status()
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payouts", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args(argv)

    from stellar_sdk import Keypair

    from django_piauth.testing import FakePiPlatform, LoopbackServer
    from django_piauth.testing.horizon import FakeHorizon

    seed = Keypair.random().secret
    platform = FakePiPlatform()
    platform.app_wallet = Keypair.from_secret(seed).public_key
    horizon = FakeHorizon(platform.network, platform=platform)
    horizon.create_account(platform.app_wallet, balance=10**9)
    with (tempfile.TemporaryDirectory() as tmp, LoopbackServer(platform) as pi_server,
          LoopbackServer(horizon) as horizon_server):
        env = {"BENCH_DB": str(Path(tmp) / "bench.sqlite3"), "BENCH_FAKE_URL": pi_server.url,
               "BENCH_WALLET_SEED": seed, "BENCH_HORIZON_URL": horizon_server.url,
               "BENCH_SERVER_API_KEY": platform.server_api_key,
               "BENCH_PI_NETWORK": platform.network}
        _django(env)
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from django_piauth.models import Pioneer

        call_command("migrate", verbosity=0)
        uids = []
        for index in range(options.payouts):
            platform.issue_token(username=f"bench{index}")
            uid = platform.uid_for(f"bench{index}")
            horizon.create_account(platform.wallet_of(uid), balance=0)
            user = get_user_model().objects.create(username=f"bench{index}")
            Pioneer.objects.create(user=user, provider="pi", uid=uid, username=f"bench{index}")
            uids.append(uid)
        from django.db import connections

        connections.close_all()
        shares = [uids[worker::options.workers] for worker in range(options.workers)]
        context = multiprocessing.get_context("spawn")
        with context.Pool(options.workers) as pool:
            started = time.perf_counter()
            completed = sum(pool.starmap(_pay_share, [(env, share) for share in shares]))
            elapsed = time.perf_counter() - started
            bare_urls = [f"{horizon_server.url}/fee_stats",
                         f"{horizon_server.url}/accounts/{platform.app_wallet}"]
            calls = options.payouts * CALLS_PER_PAYOUT
            started = time.perf_counter()
            pool.starmap(_bare_calls, [(bare_urls, calls // options.workers)] * options.workers)
            bare_elapsed = time.perf_counter() - started
    if completed != options.payouts or len(horizon.transactions) != options.payouts:
        print(f"FAILED: {completed} of {options.payouts} completed, "
              f"{len(horizon.transactions)} transactions, refusals {horizon.refusals}")
        return 1
    ours, bound = options.payouts / elapsed, options.payouts / bare_elapsed
    print(f"| payouts, {options.workers} workers, one wallet | {ours:.1f} payouts/s | "
          f"bare round trips allow {bound:.1f}/s | ratio {ours / bound:.2f} | "
          f"{options.payouts} transactions, {len(horizon.refusals)} refused |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
