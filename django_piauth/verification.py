"""From a token to a verified identity: the format check, the cache, one upstream call.

Every caller (backend, DRF class, views, sync or async) goes through here, so what a
token may look like, how long a verdict is kept and how concurrent requests share one
``/v2/me`` call live in one place. No database: linking identities to users is the
backends' job.

The cache (and, for ``LOCAL_CACHE_TTL`` seconds, a copy in the process) holds, under a
keyed digest of the token (never the token):
- a verified identity, until the earlier of its ``valid_until`` and ``TOKEN_CACHE_TTL``;
- a rejection (upstream said 401), for ``REJECTED_TOKEN_CACHE_TTL``.
Outages are never cached.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import BaseCache
from django.views.decorators.debug import sensitive_variables

from .conf import built_from_settings, on_reload, piauth_settings
from .exceptions import InvalidToken, MalformedToken, UpstreamUnavailable
from .providers.pi import SERVICE, PiIdentity, get_pi_client
from .shared_cache import shared_cache
from .singleflight import SingleFlight, Source

logger = logging.getLogger("django_piauth")

@dataclass(frozen=True)
class Verification:
    identity: PiIdentity
    #: True only for the one request whose ``/v2/me`` call produced this answer.
    from_upstream: bool
    #: True when the answer was made during this request, by its own ``/v2/me`` call or
    #: one it waited for; False for a verdict some cache held already.
    fresh: bool = False


def check_token_format(token: object) -> str:
    """Return ``token`` if it can be a bearer token, else raise ``MalformedToken``.

    A token is printable ASCII without spaces and at most ``MAX_TOKEN_BYTES`` long;
    anything else is refused before any upstream call.
    """
    if not isinstance(token, str) or not token:
        raise MalformedToken("the access token is empty")
    if len(token) > piauth_settings.MAX_TOKEN_BYTES:
        raise MalformedToken("the access token is too long")
    if not _PRINTABLE_ASCII.fullmatch(token):
        raise MalformedToken("the access token has characters a token cannot have")
    return token


_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")

#: The HMAC key of token digests, derived from SECRET_KEY (rebuilt if it changes).
_digest_key = built_from_settings(
    lambda: f"django_piauth.token:{settings.SECRET_KEY}".encode())


def token_digest(token: str) -> str:
    """A keyed, irreversible digest of ``token``: what logs and caches may hold."""
    return hmac.digest(_digest_key(), token.encode("ascii"), hashlib.sha256).hex()


def verdict_key(digest: str) -> str:
    """The cache key of the verdict on the token whose :func:`token_digest` is ``digest``."""
    return f"piauth:pi:{digest}"


def token_cache() -> BaseCache:
    return shared_cache()


# A cached verdict is ``(until, identity)``: ``until`` is when it stops holding (epoch
# seconds; kept in the value so no cache can keep it longer), ``identity`` a tuple of
# plain values (cheap to pickle) or None for a token upstream rejected.
Verdict = tuple[float, tuple[Any, ...] | None]


def _verified(identity: PiIdentity) -> Verdict:
    now = time.time()
    until = now + float(piauth_settings.TOKEN_CACHE_TTL)
    valid_until = identity.valid_until.timestamp() if identity.valid_until else None
    if valid_until is not None:
        until = min(until, valid_until)
    return (until, (identity.uid, identity.username, identity.scopes, valid_until))


def _rejected() -> Verdict:
    return (time.time() + float(piauth_settings.REJECTED_TOKEN_CACHE_TTL), None)


def _usable(verdict: Any) -> bool:
    """A verdict that still holds (anything else a cache may hold under the key: no)."""
    return type(verdict) is tuple and len(verdict) == 2 and verdict[0] > time.time()


def _identity(verdict: Verdict) -> PiIdentity:
    """The identity a verdict vouches for, or ``InvalidToken`` for a rejection."""
    values = verdict[1]
    if values is None:
        raise InvalidToken("the Pi Platform rejected the access token")
    uid, username, scopes, valid_until = values
    return PiIdentity(
        uid=uid,
        username=username,
        scopes=scopes,
        valid_until=datetime.fromtimestamp(valid_until, tz=UTC) if valid_until else None,
    )


class LocalVerdicts:
    """A process-local copy of recent verdicts in front of the shared cache.

    With Redis or Memcached, a request with a known token would otherwise pay a network
    round trip for every lookup. A copy is used for at most ``LOCAL_CACHE_TTL`` seconds
    and never beyond the verdict's own ``until``; the user is still read from the
    database on every request, so deactivation takes effect at once. After that the
    entry only says the token was seen (so the shared cache most likely has it) until
    the verdict's end.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        # key -> (used until, verdict), oldest first. An OrderedDict: forgetting the
        # oldest of a plain dict again and again gets slower with every pop.
        self._entries: OrderedDict[str, tuple[float, Verdict]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get(self, key: str) -> Verdict | None:
        """The verdict, while this copy of it may be used."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.time():
            return None
        return entry[1]

    def seen(self, key: str) -> bool:
        """Whether a verdict on this key was here and still holds (if not fresh)."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        if entry[1][0] <= time.time():
            self.forget(key, entry)
            return False
        return True

    def forget(self, key: str, entry: tuple[float, Verdict] | None = None) -> None:
        """Drop the entry under ``key`` (only if it is still ``entry``, when given).

        Under the lock, like ``put``: an unlocked removal between ``put`` storing a key
        and moving it to the end made ``move_to_end`` raise ``KeyError``, and could drop
        the fresh verdict another thread had just put in place of an expired one.
        Reads (``get``) stay lock-free.
        """
        with self._lock:
            if entry is None or self._entries.get(key) is entry:
                self._entries.pop(key, None)

    def put(self, key: str, verdict: Verdict) -> None:
        local_ttl = piauth_settings.LOCAL_CACHE_TTL
        if not local_ttl:
            return
        until = min(verdict[0], time.time() + local_ttl)
        with self._lock:
            self._entries[key] = (until, verdict)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


local_verdicts = LocalVerdicts()
on_reload(local_verdicts.clear)

_flights = SingleFlight(on_failure=lambda why: UpstreamUnavailable(why, service=SERVICE))
on_reload(_flights.forget_warnings)


@sensitive_variables()  # the token travels in headers below: no frame may show it
def _ask_upstream(token: str, digest: str) -> Verdict:
    """The Pi Platform's verdict on ``token``: one ``/v2/me`` call."""
    logger.debug("verifying Pi access token %s with /v2/me", digest[:12])
    try:
        identity = get_pi_client().me(token)
    except InvalidToken:
        logger.info("the Pi Platform rejected access token %s", digest[:12])
        return _rejected()
    logger.debug("Pi access token %s belongs to uid %s", digest[:12], identity.uid)
    return _verified(identity)


@sensitive_variables("token")  # kept out of Django's error reports
def verify_pi_token(token: object) -> Verification:
    """Who ``token`` belongs to, from the caches or from one ``/v2/me`` call.

    Raises ``MalformedToken``/``InvalidToken`` (no) or ``UpstreamUnavailable`` (cannot say).
    """
    token = check_token_format(token)
    digest = token_digest(token)
    key = verdict_key(digest)
    verdict = local_verdicts.get(key)
    if verdict is not None:
        return Verification(_identity(verdict), from_upstream=False)
    return _shared_or_upstream(token, digest, key, expect_value=local_verdicts.seen(key))


@sensitive_variables("token")
def verify_pi_token_again(token: object) -> Verification:
    """Who ``token`` belongs to, asked anew: its cached verdict (the shared cache's and
    this process's copy) is forgotten first, so the answer comes from a ``/v2/me`` call,
    this one's or a concurrent request's that is waited for.

    For a cached verdict whose identity nobody is linked to any more (the user or the
    Pioneer was deleted): only upstream may vouch for a new account.
    """
    token = check_token_format(token)
    digest = token_digest(token)
    key = verdict_key(digest)
    local_verdicts.forget(key)
    try:
        token_cache().delete(key)
    except Exception as exc:  # a shared cache that fails is done without
        _flights.cache_failed(exc)
    return _shared_or_upstream(token, digest, key, expect_value=False)


def _shared_or_upstream(token: str, digest: str, key: str, *,
                        expect_value: bool) -> Verification:
    """The verdict from the shared cache, or from one ``/v2/me`` call (single flight)."""

    def ask_upstream() -> Verdict:  # not a partial: its repr would show the token
        return _ask_upstream(token, digest)

    connect, read = piauth_settings.timeout
    verdict, source = _flights.run(
        token_cache(), key, ask_upstream, lock_timeout=connect + read + 1, is_value=_usable,
        lifetime=lambda v: v[0] - time.time(), expect_value=expect_value)
    if _usable(verdict):
        local_verdicts.put(key, verdict)
    return Verification(_identity(verdict), from_upstream=source is Source.COMPUTED,
                        fresh=source.fresh)


async def averify_pi_token(token: object) -> Verification:
    """:func:`verify_pi_token` for async code: the waiting happens off the event loop."""
    return await sync_to_async(verify_pi_token, thread_sensitive=False)(token)


async def averify_pi_token_again(token: object) -> Verification:
    """:func:`verify_pi_token_again` for async code."""
    return await sync_to_async(verify_pi_token_again, thread_sensitive=False)(token)

