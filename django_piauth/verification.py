"""From a token to a verified identity: the format check, the cache, one upstream call.

Every caller (backend, DRF class, views, sync or async) goes through here, so what a
token may look like, how long a verdict is kept and how concurrent requests share one
``/v2/me`` call live in one place. No database: linking identities to users is the
backends' job.

The cache holds, under a keyed digest of the token (never the token):
- a verified identity, until the earlier of its ``valid_until`` and ``TOKEN_CACHE_TTL``;
- a rejection (upstream said 401), for ``REJECTED_TOKEN_CACHE_TTL``.
Outages are never cached.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import BaseCache, caches

from .conf import built_from_settings, piauth_settings
from .exceptions import InvalidToken, MalformedToken, UpstreamUnavailable
from .providers.pi import SERVICE, PiIdentity, get_pi_client
from .singleflight import SingleFlight

logger = logging.getLogger("django_piauth")

_REJECTED = "rejected"


@dataclass(frozen=True)
class Verification:
    identity: PiIdentity
    #: True only for the one request whose ``/v2/me`` call produced this answer.
    from_upstream: bool


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


def token_cache() -> BaseCache:
    return caches[piauth_settings.CACHE_ALIAS]


def _pack(identity: PiIdentity) -> tuple[Any, ...]:
    """Plain values (cheap to pickle) rather than the dataclass."""
    valid_until = identity.valid_until.timestamp() if identity.valid_until else None
    return (identity.uid, identity.username, identity.scopes, valid_until)


def _unpack(value: tuple[Any, ...]) -> PiIdentity:
    uid, username, scopes, valid_until = value
    return PiIdentity(
        uid=uid,
        username=username,
        scopes=scopes,
        valid_until=datetime.fromtimestamp(valid_until, tz=UTC) if valid_until else None,
    )


def _usable(value: Any) -> bool:
    """A cached verdict that still holds (a cache may keep an entry a second too long)."""
    if value is None:
        return False
    if value == _REJECTED:
        return True
    valid_until = value[3]
    return valid_until is None or valid_until > time.time()


def _verdict(value: Any) -> PiIdentity:
    if value == _REJECTED:
        raise InvalidToken("the Pi Platform rejected the access token")
    return _unpack(value)


def _lifetime(identity: PiIdentity) -> float:
    ttl = float(piauth_settings.TOKEN_CACHE_TTL)
    if identity.valid_until is not None:
        ttl = min(ttl, identity.valid_until.timestamp() - time.time())
    return ttl


_flights = SingleFlight(on_failure=lambda why: UpstreamUnavailable(why, service=SERVICE))


def verify_pi_token(token: object) -> Verification:
    """Who ``token`` belongs to, from the cache or from one ``/v2/me`` call.

    Raises ``MalformedToken``/``InvalidToken`` (no) or ``UpstreamUnavailable`` (cannot say).
    """
    token = check_token_format(token)
    digest = token_digest(token)
    key = f"piauth:pi:{digest}"
    cache = token_cache()
    value = cache.get(key)
    if _usable(value):
        return Verification(_verdict(value), from_upstream=False)

    asked_upstream = False

    def ask_upstream() -> Any:
        nonlocal asked_upstream
        asked_upstream = True
        logger.debug("verifying Pi access token %s with /v2/me", digest[:12])
        try:
            identity = get_pi_client().me(token)
        except InvalidToken:
            logger.info("the Pi Platform rejected access token %s", digest[:12])
            cache.set(key, _REJECTED, timeout=piauth_settings.REJECTED_TOKEN_CACHE_TTL)
            return _REJECTED
        logger.debug("Pi access token %s belongs to uid %s", digest[:12], identity.uid)
        packed = _pack(identity)
        lifetime = _lifetime(identity)
        if lifetime > 0:
            cache.set(key, packed, timeout=lifetime)
        return packed

    connect, read = piauth_settings.timeout
    value = _flights.run(cache, key, ask_upstream, lock_timeout=connect + read + 1,
                         is_value=_usable)
    return Verification(_verdict(value), from_upstream=asked_upstream)


async def averify_pi_token(token: object) -> Verification:
    """:func:`verify_pi_token` for async code: the waiting happens off the event loop."""
    return await sync_to_async(verify_pi_token, thread_sensitive=False)(token)

