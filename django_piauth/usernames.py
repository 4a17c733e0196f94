"""A free username for a new Pioneer: the wanted one, else ``-2``, ``-3``, ... (case-blind).

The names already taken are read in one query: those that start with the wanted name,
compared the way the database compares ``istartswith``. That comparison cannot use an
index (PostgreSQL compares ``UPPER(username)``, SQLite's ``LIKE`` folds case), so on its
own it reads the whole user table: 2 ms at 20,000 users on SQLite, and growing with every
user, on every first sign-in. So the query also carries a condition that an index can
answer and that every such name meets: it starts with one of the case variants of the
wanted name's first characters (a range of the username index on SQLite, ``LIKE
'prefix%'`` on PostgreSQL's pattern index), as many as keep the variants few. The database
then checks ``istartswith`` only on the rows in those ranges, and the result is the same
set of names. (Names that share a long prefix, ``user1`` to ``user99999``, narrow little.)
"""

from __future__ import annotations

import itertools

from django.db import router
from django.db.models import Model, Q

#: At most this many index ranges narrow the search: one per case variant of the wanted
#: name's leading characters (an ASCII letter has two, a digit or ``-`` one).
_MAX_VARIANTS = 32

#: Characters outside ASCII that PostgreSQL's ``UPPER()`` turns into an ASCII letter, so
#: a name starting with them matches ``istartswith`` of that letter there.
_FOLDS_TO_ASCII = {"I": "\u0131", "S": "\u017f"}  # dotless i, long s


def taken_usernames(user_model: type[Model], field_name: str, base: str) -> set[str]:
    """The lower-cased usernames that start with ``base``, ignoring case."""
    manager = user_model._default_manager
    names = manager.filter(**{f"{field_name}__istartswith": base})
    narrowing = _index_condition(user_model, field_name, base)
    if narrowing is not None:
        names = names.filter(narrowing)
    return {str(name).lower() for name in names.values_list(field_name, flat=True)}


def _index_condition(user_model: type[Model], field_name: str, base: str) -> Q | None:
    """A condition every name matching ``istartswith(base)`` meets and an index answers,
    or None where the database's own ``istartswith`` is best left alone."""
    from django.db import connections

    vendor = connections[router.db_for_read(user_model)].vendor
    if vendor not in ("sqlite", "postgresql"):
        return None  # MySQL's case-blind collations already use the index (and fold more)
    fold_non_ascii = vendor == "postgresql"
    options: list[list[str]] = []
    count = 1
    for character in base:
        if not character.isascii():
            break  # its case variants depend on the database's rules: stop narrowing here
        variants = _variants(character, fold_non_ascii=fold_non_ascii)
        if count * len(variants) > _MAX_VARIANTS:
            break
        options.append(variants)
        count *= len(variants)
    if not options:
        return None
    condition = Q()
    for chosen in itertools.product(*options):
        variant = "".join(chosen)
        if vendor == "sqlite":
            # SQLite's LIKE cannot use the (BINARY) index; a range of it can. Names that
            # start with ``variant`` sort from it up to its last character's successor.
            end = variant[:-1] + chr(ord(variant[-1]) + 1)
            condition |= Q(**{f"{field_name}__gte": variant, f"{field_name}__lt": end})
        else:
            condition |= Q(**{f"{field_name}__startswith": variant})
    return condition


def _variants(character: str, *, fold_non_ascii: bool) -> list[str]:
    """The characters that ``istartswith`` takes for the ASCII ``character``."""
    variants = {character, character.lower(), character.upper()}
    if fold_non_ascii and character.upper() in _FOLDS_TO_ASCII:
        variants.add(_FOLDS_TO_ASCII[character.upper()])
    return sorted(variants)


def free_username(user_model: type[Model], field_name: str, base: str, max_length: int,
                  taken: set[str] | None = None) -> str:
    """``base`` if no username equals it ignoring case, else the first free ``base-N``
    (cut to fit ``max_length``)."""
    if taken is None:
        taken = taken_usernames(user_model, field_name, base)
    if base.lower() not in taken:
        return base
    for suffix in itertools.count(2):
        ending = f"-{suffix}"
        candidate = base[: max_length - len(ending)] + ending
        if candidate.lower() not in taken:
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover
