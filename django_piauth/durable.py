"""Writes that must outlive the caller's transaction.

PeerID rotates both tokens on refresh: once it has answered, the old tokens are dead.
The new tokens (or the revocation of a dead refresh token) must therefore be committed
whatever the request's transaction does next: ``ATOMIC_REQUESTS`` rolls back a view that
raises, and DRF rolls back one that answers an ``APIException`` (a ``ValidationError``'s
400 too). :class:`CommittedWrites` picks the connection on which writes to one row
commit at once:

- outside any atomic block: the caller's connection (autocommit);
- inside one: an independent connection to the same database, closed afterwards;
- but the caller's connection (the writes then share the fate of its transaction) when
  nothing more durable exists:

  - the independent connection cannot see the row, or cannot lock it: the caller's own
    uncommitted transaction created or changed it (writing it from elsewhere would wait
    for that transaction, which waits for us: forever);
  - SQLite: the caller's transaction holds (with ``IMMEDIATE``, from its first statement)
    the one write lock of the whole database, so a second connection could not write
    until the caller commits. ``PeerIDRefreshMiddleware`` refreshes before the view's
    transaction starts; check ``piauth.W016`` warns when it is missing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from django.db import DatabaseError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

#: How often the independent connection tries to lock the row before concluding that the
#: caller's transaction holds it (another process's claim holds it for milliseconds).
_LOCK_ATTEMPTS = 4


class CommittedWrites:
    """``with CommittedWrites(Model, pk) as writes:`` then ``with writes.using(): ...``:
    inside ``using()``, the ORM's queries on the model's database run on a connection
    whose writes commit at once (see the module docstring for when none exists)."""

    def __init__(self, model: type[Model], pk: Any) -> None:
        self.alias = router.db_for_write(model)
        self._model = model
        self._pk = pk
        self._independent: BaseDatabaseWrapper | None = None

    def __enter__(self) -> CommittedWrites:
        current = connections[self.alias]
        if current.in_atomic_block and current.vendor != "sqlite":
            independent = connections.create_connection(self.alias)
            if self._can_write_row(independent):
                self._independent = independent
            else:
                independent.close()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._independent is not None:
            self._independent.close()
            self._independent = None

    @contextmanager
    def using(self) -> Iterator[None]:
        """The ORM's queries on the alias go to the chosen connection, in this thread."""
        if self._independent is None:
            yield
            return
        with _swapped(self.alias, self._independent):
            yield

    def _can_write_row(self, independent: BaseDatabaseWrapper) -> bool:
        nowait = independent.features.has_select_for_update_nowait
        rows = self._model._default_manager.filter(pk=self._pk).select_for_update(
            nowait=nowait).values_list("pk", flat=True)
        for attempt in range(_LOCK_ATTEMPTS):
            try:
                with _swapped(self.alias, independent), transaction.atomic(using=self.alias):
                    return bool(list(rows.all()))
            except DatabaseError:  # locked (or the second connection failed)
                time.sleep(0.01 * 2 ** attempt)
        return False


@contextmanager
def _swapped(alias: str, connection: BaseDatabaseWrapper) -> Iterator[None]:
    """``connections[alias]`` is ``connection`` in this thread for the duration."""
    previous = connections[alias]
    connections[alias] = connection
    try:
        yield
    finally:
        connections[alias] = previous
