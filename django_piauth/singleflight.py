"""One computation per key, however many callers ask at once.

Inside a process, concurrent callers of one key wait for the first one's result.
Across processes that share a Django cache, the first process takes a lock with
``cache.add`` (bounded by ``lock_timeout``, so a dead holder's lock runs out and a
waiter takes over); the others poll the cache for the value the holder stores.

The computation stores its own result in the cache (it knows how long the value may
live); an exception is handed to the callers already waiting and stored nowhere but a
short note under the lock's name, so that waiters in other processes hear of it
instead of each trying again. It is never read by a caller who comes later.
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
            ) -> Any:
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
                                                      is_value)
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _run_across_processes(self, cache: BaseCache, key: str, compute: Callable[[], Any],
                              lock_timeout: float, is_value: Callable[[Any], bool]) -> Any:
        lock_key = f"{key}:lock"
        failure_key = f"{key}:failed"
        me = uuid.uuid4().hex
        deadline = time.monotonic() + 2 * lock_timeout + 1
        pause = 0.002
        while True:
            if cache.add(lock_key, me, timeout=lock_timeout):
                try:
                    value = cache.get(key)  # stored by another process meanwhile?
                    if is_value(value):
                        return value
                    try:
                        return compute()
                    except Exception:
                        cache.set(failure_key, me, timeout=lock_timeout)
                        raise
                finally:
                    cache.delete(lock_key)
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
