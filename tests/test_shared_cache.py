"""The shared cache of verdicts (django_piauth.shared_cache): for Django's RedisCache a
twin with one redis client per pool (issue 14), the same keys and values; any other
backend as configured."""

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from django_piauth.verification import token_cache, token_digest, verdict_key, verify_pi_token


class MyRedisCache(RedisCache):
    """A project's own subclass: used as it is."""


def test_a_backend_other_than_djangos_redis_cache_is_used_as_configured(settings):
    if type(caches["default"]) is RedisCache:  # the services pass: a twin of it
        assert token_cache() is not caches["default"] and type(token_cache()) is RedisCache
    else:
        assert token_cache() is caches["default"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
                       "mine": {"BACKEND": "tests.test_shared_cache.MyRedisCache",
                                "LOCATION": "redis://127.0.0.1:1/0"}}
    assert token_cache() is caches["default"]
    settings.PIAUTH = {**settings.PIAUTH, "CACHE_ALIAS": "mine"}
    assert token_cache() is caches["mine"]


def test_djangos_redis_cache_gets_a_twin_with_the_same_keys(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/3",
                                   "KEY_PREFIX": "site", "VERSION": 7, "TIMEOUT": 60}}
    twin = token_cache()
    assert twin is not caches["default"]
    assert type(twin) is RedisCache
    assert twin.make_key("piauth:pi:x") == caches["default"].make_key("piauth:pi:x")
    assert twin.default_timeout == 60
    assert token_cache() is twin  # built once


@pytest.mark.services
@pytest.mark.django_db
def test_the_twin_shares_the_servers_data_and_builds_one_client(fake_pi, monkeypatch):
    """Twenty unseen tokens: 40 operations, one redis.Redis built (Django's client builds
    one per operation); the verdicts are read back through the configured cache."""
    import redis

    built = []
    real_init = redis.Redis.__init__

    def counted_init(self, *args, **kwargs):
        built.append(1)
        real_init(self, *args, **kwargs)

    from django_piauth.conf import piauth_settings

    piauth_settings.reload()  # a twin built from now on, under the counting
    monkeypatch.setattr(redis.Redis, "__init__", counted_init)
    tokens = [fake_pi.issue_token(username=f"u{i}") for i in range(20)]
    for token in tokens:
        verify_pi_token(token)
    assert len(built) <= 2  # one per pool: writes, and reads if they have their own
    assert fake_pi.call_count("/v2/me") == 20
    for token in tokens:
        assert caches["default"].get(verdict_key(token_digest(token)))[1] is not None
