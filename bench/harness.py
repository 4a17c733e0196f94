"""What every table of the benchmark is measured with: the processes it starts, the
fake upstream's control routes, wrk runs and the rows they fill, and the CPU time the
application's workers spend (``bench/run.py`` and ``bench/signins.py`` use it)."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "wrk" / "bench.lua"
HOST = "127.0.0.1"


# Processes ------------------------------------------------------------------------------

class Processes:
    """Children in their own process groups, stopped (group and all) by :meth:`stop_all`."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self._started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 (kept by the child)
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._started.append((name, proc))
        return proc

    def check(self) -> None:
        for name, proc in self._started:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see "
                                   f"{self.logdir / (name + '.log')}")

    def stop_all(self) -> None:
        for _name, proc in reversed(self._started):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, proc in reversed(self._started):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self._started.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until(what: str, ready, processes: Processes, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check()
        with contextlib.suppress(OSError, http.client.HTTPException):
            if ready():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start in {timeout:g}s")


# HTTP -----------------------------------------------------------------------------------

def http_json(port: int, method: str, path: str, payload: Any = None,
              headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        body = json.dumps(payload).encode() if payload is not None else None
        all_headers = {"Connection": "close", **(headers or {})}
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data) if data else None
        except ValueError:
            return response.status, data
    finally:
        conn.close()


class Upstream:
    """The fake Pi Platform process (``bench/fake.py``) and its control routes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://{HOST}:{port}"

    def me_calls(self) -> tuple[int, int]:
        """``/v2/me`` calls so far, and how many distinct tokens they were about."""
        _status, body = http_json(self.port, "GET", "/_bench/stats")
        return int(body["calls"].get("/v2/me", 0)), int(body["me_tokens"])

    def set_latency(self, ms: float) -> None:
        http_json(self.port, "POST", "/_bench/latency", {"ms": ms})

    def tokens(self, usernames: list[str]) -> list[str]:
        _status, body = http_json(self.port, "POST", "/_bench/tokens", {"usernames": usernames})
        return list(body["tokens"])


# wrk ------------------------------------------------------------------------------------

@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    tokens_sent: int = 0
    exhausted: int = 0
    upstream_calls: int = 0
    upstream_tokens: int = 0
    #: CPU seconds (user + system) the server's worker processes spent during the run.
    app_cpu_seconds: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return self.app_cpu_seconds * 1000 / self.requests if self.requests else 0.0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def run_wrk(args: argparse.Namespace, url: str, *, seconds: float, threads: int,
            connections: int, header: str | None = None,
            tokens_file: Path | None = None) -> Load:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s",
            "-s", str(LUA)]
    if header:
        argv += ["-H", header]
    argv.append(url)
    env = clean_env()
    if tokens_file is not None:
        env.update(BENCH_TOKENS=str(tokens_file), BENCH_THREADS=str(threads))
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60,
                         check=False)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            data = json.loads(line.removeprefix("BENCH_RESULT "))
            return Load(requests=data["requests"], seconds=data["duration_us"] / 1e6,
                        p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000,
                        errors=data["errors"], tokens_sent=data["tokens_sent"],
                        exhausted=data["threads_exhausted"])
    raise RuntimeError(f"wrk gave no result: {out.stdout}\n{out.stderr}")


# Environment ------------------------------------------------------------------------------

def clean_env() -> dict[str, str]:
    """Our environment without proxies: every request here goes to 127.0.0.1 directly."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@dataclass
class Server:
    name: str
    port: int
    description: str
    processes: int = 1
    #: The gunicorn master's pid: its children are the workers whose CPU time is counted.
    pid: int = 0

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"


@dataclass
class Row:
    label: str
    server: Server
    path: str
    header: str | None
    loads: list[Load] = field(default_factory=list)

    def median(self) -> Load:
        ordered = sorted(self.loads, key=lambda load: load.rps)
        return ordered[len(ordered) // 2]

    def calls_per_request(self) -> float:
        requests = sum(load.requests for load in self.loads)
        return sum(load.upstream_calls for load in self.loads) / requests if requests else 0.0


def settle(seconds: float = 0.3) -> None:
    """Let requests still in the servers' queues finish (they may still call upstream)."""
    time.sleep(seconds)


def measure(args: argparse.Namespace, upstream: Upstream, row: Row, **kwargs: Any) -> Load:
    calls, tokens = upstream.me_calls()
    cpu = workers_cpu_seconds(row.server.pid)
    load = run_wrk(args, row.server.url(row.path), header=row.header, **kwargs)
    settle()
    load.app_cpu_seconds = workers_cpu_seconds(row.server.pid) - cpu
    calls_after, tokens_after = upstream.me_calls()
    load.upstream_calls, load.upstream_tokens = calls_after - calls, tokens_after - tokens
    return load


_TICKS = os.sysconf("SC_CLK_TCK")


def workers_cpu_seconds(master_pid: int) -> float:
    """CPU seconds (user + system) spent so far by the children of ``master_pid`` (the
    gunicorn workers), from ``/proc``; 0 without a pid. The fake upstream, Redis and wrk
    are other processes: what this counts is the application's own work."""
    if not master_pid:
        return 0.0
    try:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    except OSError:
        return 0.0
    total = 0
    for child in children:
        with contextlib.suppress(OSError):
            # Fields after the command name (which may hold spaces, in parentheses):
            # utime and stime are the 14th and 15th of the whole line.
            fields = Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS

def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"

def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]

def median_load(row: Row) -> Load:
    """The run with the median p50."""
    ordered = sorted(row.loads, key=lambda load: load.p50_ms)
    return ordered[len(ordered) // 2]
