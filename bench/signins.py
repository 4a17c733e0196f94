"""The sign-in rows of issue 14: what a token nobody has seen yet costs, beside the peer.

Two requests, each sent once per fresh token (wrk's Lua script hands every token out once):

- **a new Pioneer per request**: the token of a person the application has never seen, so
  the request verifies it upstream and creates the ``User`` and its ``Pioneer``;
- **a known Pioneer's new token**: a fresh token of one of 32 Pioneers linked beforehand
  (a returning visit: Pi tokens expire), so the request verifies it upstream and finds the
  linked user.

Each is measured for PiAuthentication with its cache on locmem and on Redis, and for
mozilla-django-oidc (``bench/project/oidc.py``: its own ``get_userinfo``, then
``get_or_create`` of the user), at every upstream latency, in ``--repeats`` interleaved
rounds. The table gives req/s, the ratio to the peer (the median over rounds of the ratio
within one round) and the CPU time the gunicorn workers spent per request (from
``/proc``: the application's own work; the fake upstream, Redis and wrk are other
processes).
"""

from __future__ import annotations

import argparse
import random
import string
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Row, Server, Upstream, http_json, measure, median

PEER = "mozilla-django-oidc"
#: Pioneers (and peer users) a "known" row's fresh tokens belong to.
KNOWN_POOL = 32
#: A guess of the cheapest request's own cost, to issue enough tokens for a run.
_CHEAPEST_REQUEST_S = 0.0012


@dataclass
class SignIns:
    """One latency's rows: for each kind of request, the peer's row and ours per cache."""

    latency: float
    #: kind ("new", "known") -> {"peer": row, "locmem": row, "Redis": row}
    rows: dict[str, dict[str, Row]]

    def ratios(self, kind: str, cache: str) -> list[float]:
        """Each round's req/s of ours on ``cache`` over the peer's, lowest first."""
        ours, peer = self.rows[kind][cache], self.rows[kind]["peer"]
        return sorted(a.rps / b.rps for a, b in zip(ours.loads, peer.loads, strict=True))

    def ratio(self, kind: str, cache: str) -> float:
        return median(self.ratios(kind, cache))


KINDS = {
    "new": "a new Pioneer per request",
    "known": "a known Pioneer, a new token per request",
}


def run_signins(args: argparse.Namespace, tmp: Path, upstream: Upstream,
                servers: dict[str, Server], latencies: list[float]) -> list[SignIns]:
    """Every sign-in row at every latency; ``servers``: ``{"locmem": ..., "Redis": ...}``
    (the peer is served by the locmem one: it uses no PIAUTH cache)."""
    results = []
    for latency in latencies:
        upstream.set_latency(latency)
        endpoints = {"peer": (servers["locmem"], "/oidc"),
                     **{cache: (server, "/pi") for cache, server in servers.items()}}
        rows = {kind: {name: Row(f"{name}, {label}", server, path, None)
                       for name, (server, path) in endpoints.items()}
                for kind, label in KINDS.items()}
        known = {name: _link_known(upstream, server, path, f"bench-known-{latency:g}-{name}")
                 for name, (server, path) in endpoints.items()}
        per_run = int(args.workers / (latency / 1000 + _CHEAPEST_REQUEST_S)
                      * args.duration * 1.25) + 500
        for round_number in range(args.repeats):
            for kind, by_name in rows.items():
                for name, row in by_name.items():
                    if kind == "new":
                        usernames = new_usernames(per_run, seed=f"{latency}-{name}-{round_number}")
                    else:
                        usernames = [known[name][i % KNOWN_POOL] for i in range(per_run)]
                    tokens_file = tmp / f"signin-{latency:g}-{kind}-{name}-{round_number}.txt"
                    tokens_file.write_text("\n".join(upstream.tokens(usernames)) + "\n")
                    row.loads.append(measure(
                        args, upstream, row, seconds=args.duration, tokens_file=tokens_file,
                        threads=args.threads, connections=args.signin_connections))
        results.append(SignIns(latency, rows))
    return results


def new_usernames(n: int, seed: str) -> list[str]:
    """``n`` distinct usernames the way people pick them (letters, maybe digits), not one
    long shared prefix: a numbered ``bench-new-1``, ``bench-new-2``, ... would make every
    new Pioneer's free-username search read all the names made so far (see
    ``django_piauth.usernames``), which no real sign-up wave looks like."""
    rng = random.Random(seed)
    names: set[str] = set()
    while len(names) < n:
        name = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 12)))
        names.add(name + (str(rng.randint(0, 999)) if rng.random() < 0.5 else ""))
    return sorted(names, key=lambda _: rng.random())


def _link_known(upstream: Upstream, server: Server, path: str, prefix: str) -> list[str]:
    """``KNOWN_POOL`` usernames, each signed in once through ``path`` (linked now)."""
    usernames = [f"{prefix}-{i}" for i in range(KNOWN_POOL)]
    for token in upstream.tokens(usernames):
        status, _ = http_json(server.port, "GET", path,
                              headers={"Authorization": f"Bearer {token}"})
        if status != 200:
            raise RuntimeError(f"linking a known user through {path} answered {status}")
    return usernames


def print_signins_table(args: argparse.Namespace, signins: SignIns) -> None:
    print(f"### Sign-ins: a token nobody has seen, upstream latency {signins.latency:g} ms, "
          f"wrk -t{args.threads} -c{args.signin_connections}, {args.repeats} interleaved "
          "rounds (median shown)\n")
    print(f"| request | PIAUTH cache | {PEER} req/s | PiAuthentication req/s | ratio "
          f"| app CPU per request ({PEER} vs ours) | p50 ms (peer vs ours) "
          "| upstream calls/token (ours) | ratio of each round |")
    print("| --- | --- | ---: | ---: | ---: | --- | --- | ---: | --- |")
    for kind, label in KINDS.items():
        peer = signins.rows[kind]["peer"]
        for cache in ("locmem", "Redis"):
            ours = signins.rows[kind][cache]
            note = _problems(peer) + _problems(ours)
            calls = sum(load.upstream_calls for load in ours.loads)
            tokens = sum(load.upstream_tokens for load in ours.loads)
            peer_load, our_load = peer.median(), ours.median()
            print(f"| {label}{note} | {cache} | {peer_load.rps:,.0f} | {our_load.rps:,.0f} "
                  f"| {signins.ratio(kind, cache):.2f}x "
                  f"| {_cpu(peer):.2f} ms vs {_cpu(ours):.2f} ms "
                  f"| {peer_load.p50_ms:.1f} vs {our_load.p50_ms:.1f} "
                  f"| {calls / max(tokens, 1):.3f} "
                  f"| {' / '.join(f'{r:.2f}' for r in signins.ratios(kind, cache))} |")
    print(flush=True)


def _cpu(row: Row) -> float:
    """CPU ms per request over all of a row's runs."""
    requests = sum(load.requests for load in row.loads)
    return sum(load.app_cpu_seconds for load in row.loads) * 1000 / max(requests, 1)


def _problems(row: Row) -> str:
    failed = sum(load.failed for load in row.loads)
    note = f" ({row.label.partition(',')[0]}: {failed} failed)" if failed else ""
    if any(load.exhausted for load in row.loads):
        note += " (ran out of tokens)"
    return note


#: The targets of issue 14, at 0 ms upstream (at 20 ms both sides wait for upstream).
TARGETS = {"new": 1.0, "known": 1.2}


def signin_targets(signins: list[SignIns]) -> list[tuple[str, str, str, bool]]:
    """(what, measured, target, met) for each target row, and each row's soundness:
    every request answered 200, each token one upstream call."""
    results = []
    for result in signins:
        for kind, label in KINDS.items():
            for cache in ("locmem", "Redis"):
                ours = result.rows[kind][cache]
                peer = result.rows[kind]["peer"]
                calls = sum(load.upstream_calls for load in ours.loads)
                tokens = sum(load.upstream_tokens for load in ours.loads)
                sound = (calls == tokens >= sum(load.requests for load in ours.loads)
                         and all(load.failed == 0 and not load.exhausted
                                 for load in (*ours.loads, *peer.loads)))
                results.append((f"{label}, {cache}, {result.latency:g} ms: every answer 200, "
                                "one upstream call per token",
                                f"{calls / max(tokens, 1):.3f} calls/token", "exactly 1",
                                sound))
                if result.latency == 0:
                    ratio = result.ratio(kind, cache)
                    results.append((f"{label}, {cache} / {PEER}, 0 ms", f"{ratio:.2f}x",
                                    f">= {TARGETS[kind]:g}x", ratio >= TARGETS[kind]))
    return results
