"""What several tests need: requests released at one moment, and servers in subprocesses."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from django.core.cache.backends.base import BaseCache
from django.db import connections


def all_at_once(work: Callable[[Any], Any], arguments: Iterable[Any]) -> list[Any]:
    """``work(argument)`` for each argument, each in its own thread, all released together
    by a barrier; the results in order. Each thread closes its database connections."""
    arguments = list(arguments)
    barrier = threading.Barrier(len(arguments))

    def run(argument: Any) -> Any:
        try:
            barrier.wait(timeout=10)
            return work(argument)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(arguments)) as pool:
        return list(pool.map(run, arguments))


def outcome(work: Callable[[], Any]) -> Any:
    """``work()``, or the name of the exception it raised."""
    try:
        return work()
    except Exception as exc:
        return type(exc).__name__


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_it_answers(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    """Until ``url`` answers anything over HTTP; fails if ``process`` exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout or process.stderr
            raise AssertionError(f"{url} exited: {output.read() if output else ''}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {seconds}s")


@contextmanager
def running(*commands: list[str], **popen: Any) -> Iterator[list[subprocess.Popen]]:
    """The commands as processes, interrupted (then killed) and their pipes closed on exit."""
    processes = [subprocess.Popen(command, **popen) for command in commands]
    try:
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
            for pipe in (process.stdout, process.stderr):
                if pipe:
                    pipe.close()


class BrokenCache(BaseCache):
    """A cache backend whose server is down: every operation raises ConnectionError."""

    def __init__(self, location, params):
        super().__init__(params)

    def _down(self, *args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    add = get = set = touch = delete = clear = get_many = set_many = delete_many = _down


class NeverLockingCache(BaseCache):
    """A cache that keeps nothing and refuses every ``add``: no lock can ever be taken."""

    def __init__(self, location, params):
        super().__init__(params)

    def add(self, *args, **kwargs):
        return False

    def get(self, key, default=None, version=None):
        return default

    def set(self, *args, **kwargs):
        return None

    def delete(self, *args, **kwargs):
        return False

    def clear(self):
        return None


EXAMPLE_PROJECT = Path(__file__).resolve().parent.parent / "example_project"


def example_project_env(db: Path | str, *, pi: str | None = None, peerid: str | None = None,
                        horizon: str | None = None) -> dict[str, str]:
    """The environment scripts/demo gives the example project: its SQLite database at
    ``db``, the fake upstreams at these URLs, and the demo's defaults for everything
    else (so none of the caller's settings module, Server API Key or PeerID secret)."""
    env = {**os.environ, "PIAUTH_DEMO_DB": str(db), "PYTHONUNBUFFERED": "1"}
    for name in ("DJANGO_SETTINGS_MODULE", "PI_SERVER_API_KEY", "FAKE_PI_SERVER_API_KEY",
                 "PEERID_CLIENT_SECRET", "PIAUTH_KEY", "PIAUTH_DEMO_PUBLIC_HOST"):
        env.pop(name, None)
    for name, url in (("PIAUTH_PI_API_URL", pi), ("PIAUTH_PEERID_URL", peerid),
                      ("PIAUTH_HORIZON_URL", horizon)):
        if url is not None:
            env[name] = url
    return env


def migrate_example_project(db: Path | str, base_url: str | None = None) -> str:
    """``migrate`` and ``demo_setup`` on a new example database; the demo admin's password."""
    run = {"env": example_project_env(db), "cwd": EXAMPLE_PROJECT.parent, "check": True,
           "capture_output": True, "text": True}
    manage = str(EXAMPLE_PROJECT / "manage.py")
    subprocess.run([sys.executable, manage, "migrate", "--noinput"], **run)
    setup = subprocess.run([sys.executable, manage, "demo_setup",
                            *(["--base-url", base_url] if base_url else [])], **run)
    found = re.search(r"password:\s+(\S+)", setup.stdout)
    assert found is not None, setup.stdout
    return found.group(1)
