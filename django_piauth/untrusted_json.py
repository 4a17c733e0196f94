"""Parsing JSON that comes from outside: client bodies and upstream answers alike.

``json.loads`` raises ``RecursionError`` (not a ``ValueError``) on deeply nested input,
about a thousand levels on Python 3.11, which would escape every ``except ValueError``
and answer 500. It also takes ``NaN`` and ``Infinity``, which JSON has not: an
``Infinity`` where a number belongs then overflows ``int()`` (``OverflowError``, again no
``ValueError``). :func:`loads` turns every way the input can be unreadable into
:class:`NotJSON`.
"""

from __future__ import annotations

import json
from typing import Any


class NotJSON(ValueError):
    """The input is not JSON we can read; the message says why, without quoting it."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | str) -> Any:
    """The parsed value of ``data``, or ``NotJSON``."""
    try:
        return json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise NotJSON("nested too deeply") from None
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise NotJSON("not valid JSON") from None
