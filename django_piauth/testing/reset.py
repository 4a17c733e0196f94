"""``piauth_reset()``: forget what django-piauth keeps between requests, so that each
test starts as a fresh process would.

What it forgets: the per-process copies of token verdicts; the verdicts and the
single-flight locks in the shared cache (``PIAUTH["CACHE_ALIAS"]``); the clients and
keys built from the settings. The shipped fixtures (``fake_pi`` and the others) call it
at setup; call it yourself in a setup of your own.

Only the package's own entries are deleted from a local-memory or Redis cache (their
keys start with ``piauth:``); any other cache backend is cleared whole, since Django's
cache API cannot list keys. Use a local-memory cache in tests.
"""

from __future__ import annotations

from typing import Any

#: Every key the package writes to the shared cache starts with this.
KEY_PREFIX = "piauth:"


def piauth_reset() -> None:
    """Forget the package's verdicts (the per-process copies and the shared cache's
    ``piauth:`` entries) and its clients built from the settings: the next request
    verifies its token upstream, as in a fresh process."""
    from django.core.cache.backends.dummy import DummyCache

    from ..conf import piauth_settings
    from ..verification import local_verdicts, token_cache

    local_verdicts.clear()
    cache = token_cache()
    if not isinstance(cache, DummyCache):
        _forget_package_keys(cache)
    piauth_settings.reload()  # rebuilds clients and keys on next use


def _forget_package_keys(cache: Any) -> None:
    from django.core.cache.backends.locmem import LocMemCache
    from django.core.cache.backends.redis import RedisCache

    pattern = cache.make_key(KEY_PREFIX)
    if isinstance(cache, LocMemCache):
        # Its private state, which django-stubs does not declare.
        state = cache._lock, cache._cache, cache._expire_info  # type: ignore[attr-defined]
        lock, store, expiry = state
        with lock:  # its own lock: the store is an OrderedDict plus expiry times
            for key in [key for key in store if key.startswith(pattern)]:
                store.pop(key, None)
                expiry.pop(key, None)
    elif isinstance(cache, RedisCache):
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{pattern}*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()
