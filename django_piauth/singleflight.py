"""One computation per key, however many callers ask at once.

Inside a process, concurrent callers of one key wait for the first one's result.
Across processes that share a Django cache, the key itself is the lock: the first
process puts a placeholder under it with ``cache.add`` (bounded by ``lock_timeout``, so a
dead holder's placeholder runs out and a waiter takes over), computes, and replaces the
placeholder with the value. The others find the placeholder and poll until the value is
there.

Taking the lock is also the first look at the key, so a value nobody has computed yet
costs two round trips to a shared cache (the ``add``, the store) rather than three (a
read before them). A value already there costs the failed ``add`` and one read; callers
who expect a value (it is in their own recent memory) read first with
``run(..., expect_value=True)``.

An exception is handed to the callers already waiting and stored nowhere but a short
note beside the key, so that waiters in other processes hear of it instead of each
trying again. A caller who comes later never reads it: the placeholder is gone, so it
takes the lock and computes.

The shared cache is a help, not a dependency: when it fails (Redis down), the value is
computed without it, still once per process at a time, and a warning is logged at most
once a minute.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import BaseCache

logger = logging.getLogger("django_piauth")

_PLACEHOLDER_PREFIX = "django_piauth.singleflight:computing:"
#: Seconds between two warnings that the shared cache fails.
_WARN_EVERY = 60.0


def placeholder(owner: str) -> str:
    """What stands under a key while ``owner`` computes its value."""
    return f"{_PLACEHOLDER_PREFIX}{owner}"


def is_placeholder(value: Any) -> bool:
    return type(value) is str and value.startswith(_PLACEHOLDER_PREFIX)


class Source(enum.Enum):
    """Where :meth:`SingleFlight.run` got its value."""

    COMPUTED = "computed"  # this call computed it
    AWAITED = "awaited"  # another caller computed it while this one waited
    STORED = "stored"  # it was in the cache already, computed earlier

    @property
    def fresh(self) -> bool:
        """Computed during this call, by it or by a caller it waited for."""
        return self is not Source.STORED


class _CacheFailed(Exception):
    """The shared cache raised: what it raised is the cause."""


class _Flight:
    __slots__ = ("done", "error", "source", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.source = Source.STORED
        self.error: BaseException | None = None


class SingleFlight:
    """``run(cache, key, compute)``: the value under ``key``, computed at most once at a time.

    ``is_value(found)`` says whether what the cache holds may be used (a value can be
    past its own end before the cache drops it); ``lifetime(value)`` how many seconds a
    computed value is stored for (none left: not stored). ``on_failure(why)`` builds the
    exception waiters in other processes raise when the holder's computation failed, or
    when they waited longer than twice the lock's life.
    """

    def __init__(self, *, on_failure: Callable[[str], BaseException]) -> None:
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()
        self._on_failure = on_failure
        self._warned_at = -_WARN_EVERY

    def failure(self, why: str) -> BaseException:
        """The exception a caller raises when it cannot get the value from others."""
        return self._on_failure(why)

    def forget_warnings(self) -> None:
        """The next failure of the cache is told at once (the cache settings changed)."""
        self._warned_at = -_WARN_EVERY

    def cache_failed(self, error: BaseException) -> None:
        """Say (at most once a minute) that the shared cache fails and is done without."""
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            logger.warning("the shared cache failed (%s: %s); going on without it",
                           type(error).__name__, error)

    def run(self, cache: BaseCache, key: str, compute: Callable[[], Any], *,
            lock_timeout: float, is_value: Callable[[Any], bool],
            lifetime: Callable[[Any], float], expect_value: bool = False,
            ) -> tuple[Any, Source]:
        """The value and where it came from."""
        with self._lock:
            waiting_for = self._flights.get(key)
            if waiting_for is None:
                flight = self._flights[key] = _Flight()
        if waiting_for is not None:
            # Twice the lock's life: enough for a takeover after a dead holder.
            if not waiting_for.done.wait(timeout=2 * lock_timeout + 1):
                raise self.failure("waited too long for another request's answer")
            if waiting_for.error is not None:
                raise waiting_for.error
            fresh = waiting_for.source.fresh
            return waiting_for.value, Source.AWAITED if fresh else Source.STORED
        try:
            try:
                flight.value, flight.source = _Across(
                    self, cache, key, compute, lock_timeout, is_value, lifetime,
                ).run(expect_value)
            except _CacheFailed as failed:
                self.cache_failed(failed.__cause__ or failed)
                flight.value, flight.source = compute(), Source.COMPUTED
            return flight.value, flight.source
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()


class _Across:
    """One process's part in computing a key's value with the other processes."""

    def __init__(self, flights: SingleFlight, cache: BaseCache, key: str,
                 compute: Callable[[], Any], lock_timeout: float,
                 is_value: Callable[[Any], bool], lifetime: Callable[[Any], float]) -> None:
        self.flights, self.cache, self.key = flights, cache, key
        self.compute, self.lock_timeout = compute, lock_timeout
        self.is_value, self.lifetime = is_value, lifetime
        self.failure_key = f"{key}:failed"
        self.me = uuid.uuid4().hex

    def run(self, expect_value: bool) -> tuple[Any, Source]:
        deadline = time.monotonic() + 2 * self.lock_timeout + 1
        pause = 0.002
        waited = False  # for another process's computation
        found = self._read() if expect_value else {}
        while True:
            current = found.get(self.key)
            if current is None:
                if self.failure_key in found:
                    raise self.flights.failure("another request's upstream call failed")
                # Nobody computes it (never did, its holder died, or it ran out): take
                # the lock, or learn who has it.
                if self._cache("add", self.key, placeholder(self.me),
                               timeout=self.lock_timeout):
                    return self._compute_and_store(), Source.COMPUTED
                if time.monotonic() > deadline:  # a cache that neither adds nor has it
                    raise self.flights.failure("the cache would not take the lock")
                found = self._read()
                continue
            if not is_placeholder(current):
                if self.is_value(current):
                    return current, Source.AWAITED if waited else Source.STORED
                # Past its end while the cache still keeps it (the cache's clock is not
                # ours): compute anew over it.
                return self._compute_and_store(), Source.COMPUTED
            # Another process computes it: wait for what it stores.
            if time.monotonic() > deadline:
                raise self.flights.failure("waited too long for another request's answer")
            waited = True
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            found = self._read()

    def _cache(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.cache, method)(*args, **kwargs)
        except Exception as exc:
            raise _CacheFailed(method) from exc

    def _read(self) -> dict[str, Any]:
        found: dict[str, Any] = self._cache("get_many", [self.key, self.failure_key])
        return found

    def _compute_and_store(self) -> Any:
        try:
            value = self.compute()
        except Exception:
            self._store_quietly(lambda: (
                self._cache("set", self.failure_key, self.me, timeout=self.lock_timeout),
                self._cache("delete", self.key)))
            raise
        seconds = self.lifetime(value)
        if seconds > 0:
            self._store_quietly(lambda: self._cache("set", self.key, value, timeout=seconds))
        else:
            # Nothing to keep: just let go of the lock.
            self._store_quietly(lambda: self._cache("delete", self.key))
        return value

    def _store_quietly(self, store: Callable[[], Any]) -> None:
        """Store, or warn that the cache failed: the value is computed either way, and a
        placeholder left behind runs out by itself."""
        try:
            store()
        except _CacheFailed as failed:
            self.flights.cache_failed(failed.__cause__ or failed)
