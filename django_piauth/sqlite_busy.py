"""SQLite's "database is locked": retried where a retry can succeed, else a 503, never a 500.

SQLite has one write lock. A transaction that waited ``timeout`` seconds for it, or one in
Django's default ``DEFERRED`` mode that read first and must become a writer while another
connection writes (SQLite fails those at once rather than let two wait for each other),
raises ``OperationalError("database is locked")``. Outside any enclosing transaction the
whole block can simply run again a moment later; inside one it cannot (the enclosing
transaction keeps what it read), so there the error is only turned into
:class:`~django_piauth.exceptions.DatabaseBusy`, which every caller answers with 503 and
``Retry-After``, like an upstream outage. Check ``piauth.W017`` warns when a SQLite
database is not in ``IMMEDIATE`` mode, the setting that makes writers queue instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, connections

from .exceptions import DatabaseBusy

logger = logging.getLogger("django_piauth")

T = TypeVar("T")

#: Pauses before each new attempt, in seconds.
_PAUSES = (0.01, 0.05, 0.2)


def _busy_timeout(using: str) -> float:
    """Seconds SQLite waits for the write lock before it says "database is locked"
    (``OPTIONS["timeout"]``; Python's sqlite3 waits 5 by default)."""
    options = connections[using].settings_dict.get("OPTIONS") or {}
    return float(options.get("timeout", 5))


def is_locked(error: BaseException, using: str) -> bool:
    """Whether ``error`` is SQLite saying another connection holds the write lock."""
    return (connections[using].vendor == "sqlite" and isinstance(error, OperationalError)
            and "database is locked" in str(error))


def retry_when_locked(write: Callable[[], T], *, using: str) -> T:
    """``write()`` (a whole transaction), run again after a pause when SQLite refused it at
    once; :class:`DatabaseBusy` when it still does, when the refusal came only after
    SQLite's own ``timeout`` of waiting (a second try would wait as long again), or when
    an enclosing transaction makes running it again useless."""
    enclosed = connections[using].in_atomic_block
    waited_enough = _busy_timeout(using) / 2
    for pause in (*_PAUSES, None):
        started = time.monotonic()
        try:
            return write()
        except OperationalError as exc:
            if not is_locked(exc, using):
                raise
            if enclosed or pause is None or time.monotonic() - started >= waited_enough:
                logger.warning("the database %r stayed locked (SQLite); answering 503", using)
                raise DatabaseBusy("the database is busy (SQLite: database is locked)",
                                   service="database") from exc
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover
