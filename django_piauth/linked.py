"""From a link (provider, uid) to its rows: one precompiled query, no ORM compiler.

This runs on every request (the user of a cached token) and on every upstream verdict
(the Pioneer and its user), so the query is written out once per database and user
model, from the models' metadata, and its rows are turned into instances the way the
ORM does it (the backend's and the fields' converters, then ``Model.from_db``) without
the ORM's per-query compiling, which costs more than the indexed lookup itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.db.models import Field, Model

if TYPE_CHECKING:
    # _User is django-stubs' name for "the AUTH_USER_MODEL class" (see backends.py).
    from django.contrib.auth.models import _User

    from .models import Pioneer

Converter = Callable[[Any, Any, Any], Any]
#: A converter as kept: a ``Converter``, or a backend's converter method unbound (the
#: flag beside it says which), called with the connection's ops first.
KeptConverter = Callable[..., Any]


def _column(field: Field[Any, Any]) -> str:
    """The column of a concrete field: the stubs allow None, which is a field without one
    (Django's ``concrete`` means "has a column")."""
    return cast(str, field.column)


@dataclass(frozen=True)
class _RowPart:
    """The columns of one model within a row: where they start, what converts them."""

    model: type[Model]
    start: int
    attnames: tuple[str, ...]
    #: (column index within this part, its converters, the column expression); a
    #: converter of the database backend is kept unbound (``ops_method``) and bound to
    #: the calling thread's connection when used: connections are per thread.
    converters: tuple[tuple[int, tuple[tuple[KeptConverter, bool], ...], Any], ...]

    @classmethod
    def of(cls, model: type[Model], start: int, alias: str) -> _RowPart:
        connection = connections[alias]
        fields = model._meta.concrete_fields
        converters = []
        for index, field in enumerate(fields):
            column = field.get_col(model._meta.db_table)
            found = [_unbound(convert, connection.ops)
                     for convert in connection.ops.get_db_converters(column)]
            found += [(convert, False) for convert in column.get_db_converters(connection)]
            if found:
                converters.append((index, tuple(found), column))
        return cls(model, start, tuple(field.attname for field in fields), tuple(converters))

    def columns_sql(self, alias: str) -> str:
        quote = connections[alias].ops.quote_name
        table = quote(self.model._meta.db_table)
        return ", ".join(f"{table}.{quote(_column(field))}"
                         for field in self.model._meta.concrete_fields)

    def instance(self, alias: str, row: Sequence[Any]) -> Model:
        values = list(row[self.start:self.start + len(self.attnames)])
        if self.converters:
            connection = connections[alias]
            for index, converters, column in self.converters:
                value = values[index]
                for convert, ops_method in converters:
                    value = (convert(connection.ops, value, column, connection) if ops_method
                             else convert(value, column, connection))
                values[index] = value
        return self.model.from_db(alias, self.attnames, values)


def _unbound(convert: Converter, ops: Any) -> tuple[KeptConverter, bool]:
    """A backend converter as a function of (ops, value, expression, connection) when it
    is a method of ``ops``; as it is otherwise."""
    if getattr(convert, "__self__", None) is ops:
        return convert.__func__, True  # type: ignore[attr-defined]
    return convert, False


@dataclass(frozen=True)
class _LinkQuery:
    sql: str
    #: The models in each row, in order: (user,) or (Pioneer, user).
    parts: tuple[_RowPart, ...]

    def instances(self, alias: str, provider: str, uid: str) -> list[Model] | None:
        with connections[alias].cursor() as cursor:
            cursor.execute(self.sql, [provider, uid])
            row = cursor.fetchone()
        return None if row is None else [part.instance(alias, row) for part in self.parts]


_queries: dict[tuple[str, str, bool], _LinkQuery] = {}


def _link_query(with_pioneer: bool) -> tuple[str, _LinkQuery]:
    """The database to ask and the query of links, for the current user model."""
    from .models import Pioneer

    user_model = get_user_model()
    alias = router.db_for_read(Pioneer)
    key = (alias, user_model._meta.label, with_pioneer)
    query = _queries.get(key)
    if query is not None:
        return alias, query
    quote = connections[alias].ops.quote_name
    models = (Pioneer, user_model) if with_pioneer else (user_model,)
    parts, start = [], 0
    for model in models:
        parts.append(_RowPart.of(model, start, alias))
        start += len(parts[-1].attnames)
    columns = ", ".join(part.columns_sql(alias) for part in parts)
    pioneers, users = quote(Pioneer._meta.db_table), quote(user_model._meta.db_table)

    def column(name: str) -> str:
        # user, provider and uid are concrete fields, not reverse relations.
        return _column(cast("Field[Any, Any]", Pioneer._meta.get_field(name)))

    # Names from the models' metadata, quoted; the values are parameters.
    sql = (
        f"SELECT {columns} FROM {pioneers} INNER JOIN {users} "  # noqa: S608
        f"ON {pioneers}.{quote(column('user'))} = "
        f"{users}.{quote(_column(user_model._meta.pk))} "
        f"WHERE {pioneers}.{quote(column('provider'))} = %s "
        f"AND {pioneers}.{quote(column('uid'))} = %s"
    )
    query = _queries[key] = _LinkQuery(sql, tuple(parts))
    return alias, query


def linked_user(provider: str, uid: str) -> _User | None:
    """The user linked to (provider, uid), or None."""
    alias, query = _link_query(with_pioneer=False)
    found = query.instances(alias, provider, uid)
    # The row's one part is the user model's (_link_query's models).
    return None if found is None else cast("_User", found[0])


def linked_pioneer(provider: str, uid: str) -> Pioneer | None:
    """The Pioneer of (provider, uid) with its ``user`` already loaded, or None."""
    alias, query = _link_query(with_pioneer=True)
    found = query.instances(alias, provider, uid)
    if found is None:
        return None
    # The row's parts are (Pioneer, user model), in _link_query's order.
    pioneer_part, user_part = found
    pioneer = cast("Pioneer", pioneer_part)
    pioneer.user = cast("_User", user_part)
    return pioneer
