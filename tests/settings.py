"""Settings for the test suite: SQLite in a file (threads share it), the fake Pi Platform."""

import os
import tempfile

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "django_piauth",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_piauth.middleware.PeerIDRefreshMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "django_piauth.backends.PiBackend",
    "django_piauth.backends.PeerIDBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# A file, not :memory:, so that real threads (the concurrency tests) share one database;
# IMMEDIATE transactions make concurrent writers wait for each other instead of failing.
_db_dir = os.environ.get("PIAUTH_TEST_DB_DIR", tempfile.gettempdir())
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(_db_dir, "piauth-tests.sqlite3"),
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        "TEST": {"NAME": os.path.join(_db_dir, f"piauth-tests-{os.getpid()}.sqlite3")},
    }
}

# scripts/test runs the suite a second time against real services it starts itself.
if os.environ.get("PIAUTH_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("PIAUTH_TEST_POSTGRES_HOST", "127.0.0.1"),
            "PORT": os.environ.get("PIAUTH_TEST_POSTGRES_PORT", "5432"),
            "USER": os.environ.get("PIAUTH_TEST_POSTGRES_USER", "postgres"),
            "NAME": "piauth",
            "TEST": {"NAME": f"test_piauth_{os.getpid()}"},
        }
    }

# A server started by the "database is locked" test (tests/test_sqlite_busy.py) runs in
# Django's default DEFERRED mode, the one check piauth.W017 warns about.
if os.environ.get("PIAUTH_TEST_SQLITE_DEFERRED") and "sqlite" in DATABASES["default"]["ENGINE"]:
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}

# A server process started by a test uses the database of the test that started it.
if os.environ.get("PIAUTH_TEST_USE_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["PIAUTH_TEST_USE_DB_NAME"]

if os.environ.get("PIAUTH_TEST_CACHE") == "redis":
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["PIAUTH_TEST_REDIS_URL"],
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "django_piauth.drf.PiAuthentication",
        "django_piauth.drf.PeerIDAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
}

PIAUTH = {
    "PI_API_URL": os.environ.get("PIAUTH_TEST_PI_API_URL", "https://api.minepi.example"),
    "PI_SERVER_API_KEY": "test-server-api-key-0123456789",
    "PEERID_URL": os.environ.get("PIAUTH_TEST_PEERID_URL", "https://peerid.example"),
    "PEERID_CLIENT_ID": 42,
    "PEERID_CLIENT_SECRET": "test-peerid-client-secret",
    "TOKEN_ENCRYPTION_KEYS": ["ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="],
    "PI_PAYMENT_HANDLER": "tests.testapp.payments.ShopHandler",
}
# A server process started by a payout test pays from the test's wallet and Horizon.
if os.environ.get("PIAUTH_TEST_WALLET_SEED"):
    PIAUTH.update(PI_WALLET_SEED=os.environ["PIAUTH_TEST_WALLET_SEED"],
                  PI_HORIZON_URL=os.environ["PIAUTH_TEST_HORIZON_URL"],
                  PI_NETWORK=os.environ.get("PIAUTH_TEST_PI_NETWORK", "Pi Testnet"))

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/home/"

LOGGING_CONFIG = None
