"""Settings of the benchmark project; ``bench/run.py`` fills the environment.

- ``BENCH_FAKE_URL``: the fake Pi Platform (``/v2/me``) on 127.0.0.1;
- ``BENCH_REDIS_URL``: the throwaway Redis;
- ``BENCH_DB``: the SQLite file (in a temporary directory);
- ``BENCH_PIAUTH_CACHE``: ``locmem`` or ``redis``, the cache alias PiAuthentication uses.

A lean API project: no session, CSRF or message middleware, JSON renderer only, so that
the authentication classes are most of what differs between the endpoints.
"""

import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework.authtoken",
    "django_piauth",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "bench.project.urls"
WSGI_APPLICATION = "bench.project.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB", "/tmp/piauth-bench.sqlite3"),
        # Persistent connections, as a production deployment would have: every endpoint
        # that queries pays for a query, none for a new connection.
        "CONN_MAX_AGE": None,
        # SQLite as Django's documentation sets it up for production: WAL (readers never
        # wait for the writer), IMMEDIATE transactions (writers queue instead of failing).
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE",
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
    }
}

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
               "LOCATION": "piauth-bench"},
    "redis": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
              "LOCATION": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")},
}

AUTHENTICATION_BACKENDS = [
    "django_piauth.backends.PiBackend",
    "django.contrib.auth.backends.ModelBackend",
]

_FAKE_URL = os.environ.get("BENCH_FAKE_URL", "http://127.0.0.1:8765")

PIAUTH = {
    "PI_API_URL": _FAKE_URL,
    "CACHE_ALIAS": os.environ.get("BENCH_PIAUTH_CACHE", "locmem"),
}
# bench/payouts.py: the app wallet and Horizon of its fakes.
if os.environ.get("BENCH_WALLET_SEED"):
    PIAUTH.update(PI_SERVER_API_KEY=os.environ["BENCH_SERVER_API_KEY"],
                  PI_WALLET_SEED=os.environ["BENCH_WALLET_SEED"],
                  PI_HORIZON_URL=os.environ["BENCH_HORIZON_URL"],
                  PI_NETWORK=os.environ.get("BENCH_PI_NETWORK", "Pi Testnet"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}

# mozilla-django-oidc: only the userinfo endpoint is ever called (the DRF class takes the
# bearer token as an access token); the others must be set for the backend to start.
OIDC_DRF_AUTH_BACKEND = "bench.project.oidc.PiOIDCBackend"
OIDC_OP_USER_ENDPOINT = f"{_FAKE_URL}/v2/me"
OIDC_OP_TOKEN_ENDPOINT = f"{_FAKE_URL}/unused/token"
OIDC_OP_AUTHORIZATION_ENDPOINT = f"{_FAKE_URL}/unused/authorize"
OIDC_RP_CLIENT_ID = "bench"
OIDC_RP_CLIENT_SECRET = "bench-only-not-secret"
OIDC_TIMEOUT = (3.0, 5.0)  # the same timeouts as PIAUTH's defaults

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
