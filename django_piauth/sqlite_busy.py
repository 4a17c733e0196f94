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


def is_locked(error: BaseException, using: str) -> bool:
    """Whether ``error`` is SQLite saying another connection holds the write lock."""
    return (connections[using].vendor == "sqlite" and isinstance(error, OperationalError)
            and "database is locked" in str(error))


def retry_when_locked(write: Callable[[], T], *, using: str) -> T:
    """``write()`` (a whole transaction), run again after a pause when SQLite says the
    database is locked; :class:`DatabaseBusy` when it still is, or when an enclosing
    transaction makes running it again useless."""
    enclosed = connections[using].in_atomic_block
    for pause in (*_PAUSES, None):
        try:
            return write()
        except OperationalError as exc:
            if not is_locked(exc, using):
                raise
            if enclosed or pause is None:
                logger.warning("the database %r stayed locked (SQLite); answering 503", using)
                raise DatabaseBusy("the database is busy (SQLite: database is locked)",
                                   service="database") from exc
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover
