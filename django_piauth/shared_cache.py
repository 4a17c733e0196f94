"""The shared cache that verdicts and single-flight locks live in: ``PIAUTH["CACHE_ALIAS"]``.

It is ``caches[CACHE_ALIAS]``, with one exception. For Django's own ``RedisCache``,
django-piauth uses a twin of that cache: the same settings, so the same server, keys and
values, and a client that builds one ``redis.Redis`` per connection pool, not one per
operation. Django's client builds a new one for every ``get``/``add``/``set``. With
redis-py 8 that costs about 85 µs of CPU, mostly copying its table of response
callbacks; it was 11% of a first sign-in's CPU time, sampled in the benchmark. Each
command of a ``redis.Redis`` takes a connection from the pool and gives it back, so one
client serves every thread.

A subclass of ``RedisCache``, or any other backend, is used as configured.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

from .conf import built_from_settings, piauth_settings


class _OneClientPerPool(RedisCacheClient):
    """Django's Redis cache client, keeping the ``redis.Redis`` it builds for each pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # Django's own private parts, which django-stubs does not declare.
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            # Two threads may each build one at first; either serves.
            client = self._clients.setdefault(
                id(pool), self._client(connection_pool=pool))  # type: ignore[attr-defined]
        return client


def _twin(alias: str) -> BaseCache | None:
    """A ``RedisCache`` with ``alias``'s settings and :class:`_OneClientPerPool`, or None
    when ``alias`` is not plainly Django's ``RedisCache`` (or Django's client changed)."""
    configured = caches[alias]
    if type(configured) is not RedisCache or not all(
            hasattr(RedisCacheClient, name) for name in ("_get_connection_pool", "get_client")):
        return None
    params = dict(settings.CACHES[alias])
    params.pop("BACKEND", None)
    twin = RedisCache(params.pop("LOCATION", ""), params)
    if getattr(twin, "_class", None) is not RedisCacheClient:
        return None
    twin._class = _OneClientPerPool  # type: ignore[attr-defined]  # the backend's own hook
    return twin


_built = built_from_settings(lambda: (_twin(piauth_settings.CACHE_ALIAS),))


def shared_cache() -> BaseCache:
    """The cache of ``PIAUTH["CACHE_ALIAS"]`` (see the module's docstring)."""
    twin = _built()[0]
    return twin if twin is not None else caches[piauth_settings.CACHE_ALIAS]
