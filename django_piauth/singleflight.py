"""One computation per key, however many callers ask at once.

Inside a process, concurrent callers of one key wait for the first one's result.
Across processes that share a Django cache, the first process takes a lock with
``cache.add`` (bounded by ``lock_timeout``, so a dead holder's lock runs out and a
waiter takes over); the others poll the cache for the value the holder stores.

The computation stores its own result in the cache (it knows how long the value may
live). The holder then leaves its lock to run out rather than deleting it, when the value
will outlive it: whoever comes late finds the value, and one who missed it just before it
was stored finds the lock, waits and reads it, so nobody needs to read the cache once more
after taking the lock. That saves two round trips to a shared cache per computation. A
value gone before its lock (evicted) costs a waiter at most ``lock_timeout``.

An exception is handed to the callers already waiting and stored nowhere but a short
note under the lock's name, so that waiters in other processes hear of it instead of
each trying again. It is never read by a caller who comes later.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import BaseCache


class _Flight:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class SingleFlight:
    """``run(cache, key, compute)``: the value under ``key``, computed at most once at a time.

    ``compute()`` must store the value under ``key`` itself and return it.
    ``on_failure(error)`` builds the exception waiters in other processes raise when the
    holder's computation failed, or when they waited longer than ``wait_timeout``.
    """

    def __init__(self, *, on_failure: Callable[[str], BaseException]) -> None:
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()
        self._on_failure = on_failure

    def run(self, cache: BaseCache, key: str, compute: Callable[[], Any], *,
            lock_timeout: float, is_value: Callable[[Any], bool] = lambda v: v is not None,
            lifetime: Callable[[Any], float] = lambda v: 0.0) -> Any:
        """``lifetime(value)``: seconds the stored value stays in the cache (0: unknown,
        or not stored), which decides whether the lock may simply run out."""
        with self._lock:
            waiting_for = self._flights.get(key)
            if waiting_for is None:
                flight = self._flights[key] = _Flight()
        if waiting_for is not None:
            flight = waiting_for
            # Twice the lock's life: enough for a takeover after a dead holder.
            if not flight.done.wait(timeout=2 * lock_timeout + 1):
                raise self._on_failure("waited too long for another request's answer")
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            flight.value = self._run_across_processes(cache, key, compute, lock_timeout,
                                                      is_value, lifetime)
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _run_across_processes(self, cache: BaseCache, key: str, compute: Callable[[], Any],
                              lock_timeout: float, is_value: Callable[[Any], bool],
                              lifetime: Callable[[Any], float]) -> Any:
        lock_key = f"{key}:lock"
        failure_key = f"{key}:failed"
        me = uuid.uuid4().hex
        deadline = time.monotonic() + 2 * lock_timeout + 1
        pause = 0.002
        while True:
            if cache.add(lock_key, me, timeout=lock_timeout):
                try:
                    value = compute()
                except Exception:
                    cache.set(failure_key, me, timeout=lock_timeout)
                    cache.delete(lock_key)
                    raise
                if lifetime(value) < lock_timeout:
                    cache.delete(lock_key)  # else it runs out before the value does
                return value
            # Another process holds the lock: wait for what it stores.
            if time.monotonic() > deadline:
                raise self._on_failure("waited too long for another request's answer")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            values = cache.get_many([key, lock_key, failure_key])
            if is_value(values.get(key)):
                return values[key]
            if lock_key not in values and failure_key in values:
                raise self._on_failure("another request's upstream call failed")
            # The lock is gone without a value or a failure (its holder died, or stored
            # nothing): loop, and the first waiter to take the lock computes.
