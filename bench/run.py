"""The benchmark of issue 3: django_piauth's PiAuthentication against DRF's
TokenAuthentication and mozilla-django-oidc, behind gunicorn, on 127.0.0.1 only.

Run it with ``bench/run`` (which installs what is missing first); ``bench/README.md``
says what each row measures. Everything it starts runs in its own process group and is
stopped on exit, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import (
    HOST,
    ROOT,
    Processes,
    Row,
    Server,
    Upstream,
    clean_env,
    fmt_ratio,
    free_port,
    http_json,
    measure,
    median,
    median_load,
    run_wrk,
    settle,
    wait_until,
)
from bench.signins import SignIns, print_signins_table, run_signins, signin_targets

# Stampede ----------------------------------------------------------------------------------

def stampede(port: int, token: str, n: int) -> list[int | str]:
    """``n`` requests with one token, sent at once from ``n`` connections opened beforehand."""
    barrier = threading.Barrier(n)
    statuses: list[int | str] = ["?"] * n

    def one(i: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        try:
            conn.connect()
            barrier.wait(timeout=30)
            conn.request("GET", "/pi", headers={"Authorization": f"Bearer {token}",
                                                "Connection": "close"})
            response = conn.getresponse()
            response.read()
            statuses[i] = response.status
        except Exception as exc:
            statuses[i] = type(exc).__name__
        finally:
            conn.close()

    workers = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return statuses


# The run ------------------------------------------------------------------------------------



SECTIONS = ("hot", "cold", "signins", "stampede")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=5,
                        help="wrk runs per row and latency (interleaved); the median is shown")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per row")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--connections", type=int, default=8, help="wrk -c")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--latencies", default="0,20",
                        help="upstream latencies in ms, comma-separated")
    parser.add_argument("--cold-latency", type=float, default=20.0, help="ms, cold rows")
    parser.add_argument("--stampede", type=int, default=50, help="simultaneous requests")
    parser.add_argument("--signin-connections", type=int, default=16,
                        help="wrk -c of the sign-in rows")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"tables to run, comma-separated (default: {','.join(SECTIONS)})")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (logs, database)")
    args = parser.parse_args(argv)
    args.sections = {name.strip() for name in args.sections.split(",") if name.strip()}
    if args.sections - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(args.sections - set(SECTIONS)))}")
    if "BENCH_COMMAND" not in os.environ:
        print("$ " + shlex.join([sys.executable, *sys.argv]), flush=True)
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not on PATH (bench/run installs it)")

    tmp = Path(tempfile.mkdtemp(prefix="piauth-bench-"))
    processes = Processes(tmp)

    def _terminate(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        return run(args, tmp, processes)
    finally:
        processes.stop_all()
        if args.keep:
            print(f"(kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def start_services(args: argparse.Namespace, tmp: Path, processes: Processes,
                   ) -> tuple[Upstream, dict[str, Server], str]:
    py = sys.executable
    env = clean_env()

    upstream = Upstream(free_port())
    processes.start("fake-upstream", [py, "-m", "bench.fake", "--port", str(upstream.port)], env)

    redis_port = free_port()
    processes.start("redis", ["redis-server", "--bind", HOST, "--port", str(redis_port),
                              "--save", "", "--appendonly", "no", "--dir", str(tmp),
                              "--protected-mode", "yes", "--daemonize", "no"], env)

    def redis_ready() -> bool:
        with socket.create_connection((HOST, redis_port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    wait_until("the fake upstream", lambda: upstream.me_calls() == (0, 0), processes)
    wait_until("Redis", redis_ready, processes)

    django_env = {
        **env,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "bench.project.settings",
        "BENCH_FAKE_URL": upstream.url,
        "BENCH_REDIS_URL": f"redis://{HOST}:{redis_port}/0",
        "BENCH_DB": str(tmp / "bench.sqlite3"),
    }
    seeded = subprocess.run([py, "-m", "bench.project.seed"], cwd=ROOT, env=django_env,
                            capture_output=True, text=True, check=True, timeout=120)
    drf_key = seeded.stdout.strip().splitlines()[-1]

    specs = [
        # name, cache, worker class, workers, threads, description
        ("locmem", "locmem", "sync", args.workers, 1,
         f"{args.workers} sync workers, PIAUTH cache: locmem"),
        ("redis", "redis", "sync", args.workers, 1,
         f"{args.workers} sync workers, PIAUTH cache: Redis"),
        # Only for the stampede: many requests inside one process at once.
        ("locmem-threads", "locmem", "gthread", 1, args.stampede,
         f"1 gthread worker x {args.stampede} threads, locmem"),
        ("redis-threads", "redis", "gthread", 2, -(-args.stampede // 2),
         f"2 gthread workers x {-(-args.stampede // 2)} threads, Redis"),
    ]
    servers: dict[str, Server] = {}
    for name, cache, worker_class, workers, threads, description in specs:
        port = free_port()
        proc = processes.start(f"gunicorn-{name}", [
            py, "-m", "gunicorn", "bench.project.wsgi:application",
            "--bind", f"{HOST}:{port}", "--workers", str(workers),
            "--worker-class", worker_class, "--threads", str(threads),
            "--backlog", "2048", "--timeout", "60", "--graceful-timeout", "3",
            "--worker-tmp-dir", "/dev/shm", "--log-level", "warning",
        ], {**django_env, "BENCH_PIAUTH_CACHE": cache})
        servers[name] = Server(name, port, description, workers, pid=proc.pid)
    for server in servers.values():
        wait_until(f"gunicorn {server.name}",
                   lambda s=server: http_json(s.port, "GET", "/floor")[0] == 200, processes)
    return upstream, servers, drf_key


def run(args: argparse.Namespace, tmp: Path, processes: Processes) -> int:
    started = time.monotonic()
    upstream, servers, drf_key = start_services(args, tmp, processes)
    latencies = [float(x) for x in args.latencies.split(",") if x.strip()]
    cpu = os.cpu_count()
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, "
          f"{args.repeats} interleaved runs per row (median shown), {args.warmup:g}s warm-up; "
          f"gunicorn {args.workers} sync workers; {cpu} CPUs; everything on {HOST}\n",
          flush=True)

    pi_token, oidc_token = upstream.tokens(["bench-hot-pi", "bench-hot-oidc"])
    loc, red = servers["locmem"], servers["redis"]

    # Hot rows ---------------------------------------------------------------------------
    all_rows: dict[float, list[Row]] = {}
    for latency in latencies if "hot" in args.sections else []:
        upstream.set_latency(latency)
        rows = [
            Row("no authentication (floor)", loc, "/floor", None),
            Row("DRF TokenAuthentication", loc, "/drf-token", f"Authorization: Token {drf_key}"),
            Row("mozilla-django-oidc OIDCAuthentication", loc, "/oidc",
                f"Authorization: Bearer {oidc_token}"),
            Row("PiAuthentication, locmem", loc, "/pi", f"Authorization: Bearer {pi_token}"),
            Row("PiAuthentication, Redis", red, "/pi", f"Authorization: Bearer {pi_token}"),
        ]
        for row in rows:
            if args.warmup > 0:
                run_wrk(args, row.server.url(row.path), seconds=args.warmup,
                        threads=args.threads, connections=args.connections, header=row.header)
        settle()
        for _repeat in range(args.repeats):
            for row in rows:
                row.loads.append(measure(args, upstream, row, seconds=args.duration,
                                         threads=args.threads, connections=args.connections))
        all_rows[latency] = rows
        print_hot_table(latency, rows, args)

    # Cold rows ---------------------------------------------------------------------------
    cold = None
    if "cold" in args.sections:
        upstream.set_latency(args.cold_latency)
        cold = run_cold(args, tmp, upstream, {"locmem": loc, "Redis": red}, pi_token)
        print_cold_table(args, cold)

    # Sign-ins (bench/signins.py) ------------------------------------------------------------
    signins = []
    if "signins" in args.sections:
        signins = run_signins(args, tmp, upstream, {"locmem": loc, "Redis": red}, latencies)
        for result in signins:
            print_signins_table(args, result)

    # Stampede ----------------------------------------------------------------------------
    stampedes: list[tuple[Server, int, list[int | str]]] = []
    for name in ("locmem", "redis", "locmem-threads", "redis-threads") \
            if "stampede" in args.sections else ():
        server = servers[name]
        (token,) = upstream.tokens([f"bench-stampede-{name}"])
        before, _ = upstream.me_calls()
        statuses = stampede(server.port, token, args.stampede)
        settle()
        stampedes.append((server, upstream.me_calls()[0] - before, statuses))
    print_stampede_table(args, stampedes)
    for server, _calls, statuses in stampedes:
        if any(status != 200 for status in statuses):
            show_log_tail(tmp / f"gunicorn-{server.name}.log")

    ok = print_targets(args, all_rows, cold, signins, stampedes)
    print(f"\ntotal time {time.monotonic() - started:.0f}s")
    return 0 if ok else 1


@dataclass
class Cold:
    """The cold rows: ``rounds`` interleaved runs of each endpoint and reference."""

    endpoints: dict[str, Row]
    upstream_alone: Row
    floor: Row

    def over(self, name: str, latency: float) -> list[float]:
        """Each round's p50 minus ``latency``."""
        return [load.p50_ms - latency for load in self.endpoints[name].loads]

    def over_upstream_alone(self, name: str) -> list[float]:
        """Each round's p50 minus the fake alone's p50 in the same round."""
        return [load.p50_ms - alone.p50_ms for load, alone in
                zip(self.endpoints[name].loads, self.upstream_alone.loads, strict=True)]


def run_cold(args: argparse.Namespace, tmp: Path, upstream: Upstream,
             servers: dict[str, Server], seen_token: str) -> Cold:
    """A new token per request, each token used once, in ``--repeats`` rounds: each round
    runs every endpoint once and the two references (the fake's ``/v2/me`` alone, and
    the floor) right after, at the same concurrency, so drift of the machine between
    rounds hits all of them alike."""
    # Each fresh token belongs to a Pioneer linked beforehand (a returning Pioneer signing
    # in again): what is measured is verification, not sign-up.
    pool = 32
    expected_rate = args.workers / ((args.cold_latency + 5) / 1000)
    n_tokens = int(expected_rate * args.duration * 2) + 200
    users: dict[str, list[str]] = {}
    for name, server in servers.items():
        users[name] = [f"bench-cold-{name}-{i}" for i in range(pool)]
        for token in upstream.tokens(users[name]):
            status, _ = http_json(server.port, "GET", "/pi",
                                  headers={"Authorization": f"Bearer {token}"})
            if status != 200:
                raise RuntimeError(f"linking a cold-row Pioneer answered {status}")
    any_server = next(iter(servers.values()))
    cold = Cold(
        endpoints={name: Row(f"PiAuthentication, {name}, a new token per request", server,
                             "/pi", None) for name, server in servers.items()},
        upstream_alone=Row("the fake's /v2/me alone", Server("fake", upstream.port, ""),
                           "/v2/me", f"Authorization: Bearer {seen_token}"),
        floor=Row("floor", any_server, "/floor", None),
    )
    concurrency = {"threads": args.workers, "connections": args.workers}
    for round_number in range(args.repeats):
        for name, row in cold.endpoints.items():
            tokens_file = tmp / f"cold-{name}-{round_number}.txt"
            tokens_file.write_text("\n".join(upstream.tokens(
                [users[name][i % pool] for i in range(n_tokens)])) + "\n")
            row.loads.append(measure(args, upstream, row, seconds=args.duration,
                                     tokens_file=tokens_file, **concurrency))
        for reference in (cold.upstream_alone, cold.floor):
            reference.loads.append(measure(args, upstream, reference,
                                           seconds=min(args.duration, 3), **concurrency))
    return cold




# Output ------------------------------------------------------------------------------------

def show_log_tail(path: Path, lines: int = 40) -> None:
    """What a server said about its failures: the end of its log."""
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    print(f"The last {lines} lines of {path.name}:\n```")
    print("\n".join(text[-lines:]))
    print("```\n", flush=True)


def print_hot_table(latency: float, rows: list[Row], args: argparse.Namespace) -> None:
    floor = rows[0].median().rps
    print(f"### Upstream latency {latency:g} ms (hot: each endpoint's token already seen)\n")
    print("| endpoint | req/s | p50 ms | p99 ms | upstream calls/req | vs floor "
          "| req/s of each run |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        load = row.median()
        failed = sum(load.failed for load in row.loads)
        note = f" ({failed} failed)" if failed else ""
        runs = " / ".join(f"{run.rps:,.0f}" for run in row.loads)
        print(f"| {row.label}{note} | {load.rps:,.0f} | {load.p50_ms:.1f} | {load.p99_ms:.1f} "
              f"| {row.calls_per_request():.3f} | {fmt_ratio(load.rps / floor)} | {runs} |")
    print(flush=True)


def print_cold_table(args: argparse.Namespace, cold: Cold) -> None:
    print(f"### Cold: a new token per request, upstream latency {args.cold_latency:g} ms, "
          f"wrk -t{args.workers} -c{args.workers} (as many connections as workers: "
          f"no queueing), {args.repeats} interleaved rounds (median shown)\n")
    print("| endpoint | req/s | p50 ms | p99 ms | p50 - upstream latency "
          "| p50 - fake alone p50 | requests | tokens upstream saw | upstream calls "
          "| calls/token | p50 of each round |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, row in cold.endpoints.items():
        load = median_load(row)
        failed = sum(run.failed for run in row.loads)
        note = f" ({failed} failed)" if failed else ""
        if any(run.exhausted for run in row.loads):
            note += " (ran out of tokens)"
        requests = sum(run.requests for run in row.loads)
        tokens = sum(run.upstream_tokens for run in row.loads)
        calls = sum(run.upstream_calls for run in row.loads)
        print(f"| PiAuthentication, {name}{note} | {load.rps:,.0f} | {load.p50_ms:.1f} "
              f"| {load.p99_ms:.1f} | {median(cold.over(name, args.cold_latency)):+.1f} ms "
              f"| {median(cold.over_upstream_alone(name)):+.1f} ms | {requests} "
              f"| {tokens} | {calls} | {calls / max(tokens, 1):.3f} "
              f"| {' / '.join(f'{run.p50_ms:.1f}' for run in row.loads)} |")
    for label, row in (("(reference) the fake's /v2/me alone", cold.upstream_alone),
                       ("(reference) no authentication (floor)", cold.floor)):
        load = median_load(row)
        print(f"| {label} | {load.rps:,.0f} | {load.p50_ms:.1f} | {load.p99_ms:.1f} "
              f"| - | - | {sum(run.requests for run in row.loads)} | - | - | - "
              f"| {' / '.join(f'{run.p50_ms:.1f}' for run in row.loads)} |")
    print(flush=True)




def print_stampede_table(args: argparse.Namespace,
                         stampedes: list[tuple[Server, int, list[int | str]]]) -> None:
    print(f"### Stampede: {args.stampede} simultaneous requests with one fresh token, "
          f"upstream latency {args.cold_latency:g} ms\n")
    print("| server | upstream calls | answers |")
    print("| --- | ---: | --- |")
    for server, calls, statuses in stampedes:
        counts: dict[str, int] = {}
        for status in statuses:
            counts[str(status)] = counts.get(str(status), 0) + 1
        answers = ", ".join(f"{n} x {status}" for status, n in sorted(counts.items()))
        print(f"| {server.description} | {calls} | {answers} |")
    print(flush=True)


def print_targets(args: argparse.Namespace, all_rows: dict[float, list[Row]],
                  cold: Cold | None, signins: list[SignIns],
                  stampedes: list[tuple[Server, int, list[int | str]]]) -> bool:
    results: list[tuple[str, str, bool]] = []

    def ratio(latency: float, label: str, other: str) -> tuple[float, str]:
        """The median over rounds of (label's req/s / other's req/s) in the same round:
        runs of one round are seconds apart, so drift of the machine cancels out."""
        row = next(r for r in all_rows[latency] if r.label == label)
        base = next(r for r in all_rows[latency] if r.label == other)
        rounds = sorted(a.rps / b.rps for a, b in zip(row.loads, base.loads, strict=True))
        return rounds[len(rounds) // 2], " / ".join(f"{r:.2f}" for r in rounds)

    token, oidc = "DRF TokenAuthentication", "mozilla-django-oidc OIDCAuthentication"
    pi_loc, pi_red = "PiAuthentication, locmem", "PiAuthentication, Redis"
    print("### Ratios and targets\n")
    print("Ratios of req/s: the median over the rounds of the ratio within one round "
          "(each round's ratios in brackets, lowest first).\n")
    print("| ratio | measured | target | met |")
    print("| --- | --- | --- | --- |")
    for latency in all_rows:
        for label, target, aim in ((pi_loc, 1.0, 1.3), (pi_red, 0.9, None)):
            value, rounds = ratio(latency, label, token)
            wanted = f">= {target:g}x" + (f" (aim {aim:g}x)" if aim else "")
            met = value >= target
            results.append((f"{label} / TokenAuthentication, {latency:g} ms", wanted, met))
            print(f"| {label} / TokenAuthentication, upstream {latency:g} ms "
                  f"| {fmt_ratio(value)} ({rounds}) | {wanted} | {'yes' if met else 'NO'} |")
    for label in (pi_loc, pi_red) if all_rows else ():
        slow = max(all_rows)
        value, rounds = ratio(slow, label, oidc)
        met = value >= 20
        results.append((f"{label} / mozilla-django-oidc, {slow:g} ms", ">= 20x", met))
        print(f"| {label} / mozilla-django-oidc, upstream {slow:g} ms "
              f"| {fmt_ratio(value)} ({rounds}) | >= 20x | {'yes' if met else 'NO'} |")
    for name, row in cold.endpoints.items() if cold is not None else ():
        # Every answered request was a verified new token (no failures), and upstream saw
        # each token in exactly one call.
        calls = sum(run.upstream_calls for run in row.loads)
        tokens = sum(run.upstream_tokens for run in row.loads)
        met = (calls == tokens >= sum(run.requests for run in row.loads)
               and all(run.failed == 0 and not run.exhausted for run in row.loads))
        print(f"| cold {name}: upstream calls per token | {calls / max(tokens, 1):.3f} "
              f"({calls} calls, {tokens} tokens) | exactly 1 | {'yes' if met else 'NO'} |")
        results.append((f"cold {name}: calls per token", "1", met))
        rounds = sorted(cold.over(name, args.cold_latency))
        over = median(rounds)
        met = over <= 3.0
        print(f"| cold {name}: p50 - upstream latency | {over:+.1f} ms "
              f"({' / '.join(f'{r:+.1f}' for r in rounds)}) | <= +3 ms "
              f"| {'yes' if met else 'NO'} |")
        results.append((f"cold {name}: p50", "<= +3 ms", met))
    for server, calls, statuses in stampedes:
        all_ok = all(status == 200 for status in statuses)
        procs = server.processes
        if server.name.startswith("locmem") and procs > 1:
            # locmem is one cache per process: the best possible is one call per process.
            met = calls <= procs and all_ok
            target = f"1 per process ({procs} processes, unshared cache)"
        else:
            met = calls == 1 and all_ok
            target = "exactly 1"
        print(f"| stampede, {server.description} | {calls} call(s) | {target} "
              f"| {'yes' if met else 'NO'} |")
        results.append((f"stampede {server.name}", target, met))
    for what, measured, target, met in signin_targets(signins):
        print(f"| {what} | {measured} | {target} | {'yes' if met else 'NO'} |")
        results.append((what, target, met))
    missed = [name for name, _target, met in results if not met]
    print(f"\n{len(results) - len(missed)} of {len(results)} targets met"
          + (f"; missed: {'; '.join(missed)}" if missed else ""))
    return not missed


if __name__ == "__main__":
    sys.exit(main())
