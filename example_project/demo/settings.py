"""Settings of the django-piauth example project.

Runs offline with no configuration: by default it verifies Pi access tokens and handles
Pi payments against the fake Pi Platform that ``python -m django_piauth.testing`` serves
on 127.0.0.1:8765, and signs in with the fake PeerID it serves on 127.0.0.1:8766
(``scripts/demo`` starts both). Set ``PIAUTH_PI_API_URL`` / ``PIAUTH_PEERID_URL`` to point
it elsewhere, and ``PI_SERVER_API_KEY`` to the key that platform accepts.

DEMO ONLY: DEBUG is on, and the SECRET_KEY, the PeerID client secret and the token
encryption key below are public. Never deploy this file.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent  # example_project/

# DEMO ONLY: a fixed, published key. A real site reads its key from the environment.
SECRET_KEY = "django-piauth-example-project-demo-only-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

# DEMO ONLY: the app wallet of the demo's payouts (scripts/demo gives the fake Horizon its
# address, DEMO_WALLET_ADDRESS, with a balance). Published: it holds fake Pi only.
DEMO_WALLET_SEED = "SC53SS4AONLDLANRLERFE4EYXPQJ33VIT7Z7LPNZHNJKFIPN3WIBXVSJ"
DEMO_WALLET_ADDRESS = "GBW7QS2DSS7HSQOVEVNLSCCWDMEWQDLBFDLPQRO7ZPASUDYK3B53CKS4"
# scripts/demo's PIAUTH_DEMO_PUBLIC_HOST: the name a browser on another machine uses.
if os.environ.get("PIAUTH_DEMO_PUBLIC_HOST"):
    ALLOWED_HOSTS.append(os.environ["PIAUTH_DEMO_PUBLIC_HOST"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",  # /api/schema/: the API's OpenAPI schema
    "django_piauth",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A PeerID session's tokens are refreshed (once) before the view runs.
    "django_piauth.middleware.PeerIDRefreshMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo.urls"
WSGI_APPLICATION = "demo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("PIAUTH_DEMO_DB", BASE_DIR / "db.sqlite3"),
        # runserver is threaded: concurrent writers wait for each other instead of failing.
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django_piauth.backends.PiBackend",
    "django_piauth.backends.PeerIDBackend",  # PeerID: password and authorization code
    "django.contrib.auth.backends.ModelBackend",  # the admin's password sign-in
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "django_piauth.drf.PiAuthentication",  # Authorization: Bearer <Pi access token>
        "django_piauth.drf.PeerIDAuthentication",  # a PeerID session, refreshed when due
        "rest_framework.authentication.SessionAuthentication",  # the page's session
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # django_piauth's extensions (django_piauth.openapi) describe its authentication
    # classes (PiBearer, PeerIDSession, PiSession) and its payment endpoints.
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "django-piauth example shop",
    "DESCRIPTION": "The example project's API: saved items, purchases, a PeerID demo "
                   "operation, and django-piauth's Pi payment callbacks.",
    "VERSION": "1.0",
    "SERVE_INCLUDE_SCHEMA": False,  # /api/schema/ does not describe itself
}

PIAUTH = {
    "PI_API_URL": os.environ.get("PIAUTH_PI_API_URL", "http://127.0.0.1:8765"),
    # DEMO ONLY: the Server API Key the fake Pi Platform accepts by default (its
    # --server-api-key, or $FAKE_PI_SERVER_API_KEY; scripts/demo gives both the same key).
    # The payment endpoints call the platform with it.
    "PI_SERVER_API_KEY": os.environ.get("PI_SERVER_API_KEY", "fake-server-api-key"),
    # What the shop sells and delivers (check before approval, deliver after completion).
    "PI_PAYMENT_HANDLER": "shop.payments.ShopPayments",
    # DEMO ONLY: a published app wallet seed, for payouts to the fake Horizon. A real site
    # reads its seed from the environment and never shows it.
    "PI_WALLET_SEED": DEMO_WALLET_SEED,
    "PI_NETWORK": "Pi Testnet",
    "PI_HORIZON_URL": os.environ.get("PIAUTH_HORIZON_URL", "http://127.0.0.1:8767"),
    "PEERID_URL": os.environ.get("PIAUTH_PEERID_URL", "http://127.0.0.1:8766"),
    "PEERID_CLIENT_ID": 42,  # the fake PeerID's app (python -m django_piauth.testing)
    # DEMO ONLY: the client secret the fake PeerID accepts by default.
    "PEERID_CLIENT_SECRET": os.environ.get("PEERID_CLIENT_SECRET", "fake-peerid-secret"),
    # DEMO ONLY: a fixed, published Fernet key for the PeerID tokens stored at rest. A real
    # site reads its keys from the environment (newest first) and keeps them secret.
    "TOKEN_ENCRYPTION_KEYS": [
        os.environ.get("PIAUTH_KEY", "hrwCI6P2Ipq0qeQjklyRxArHsKj09oYTmeVTzRAx1hM="),
    ],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

LOGIN_URL = "/"  # a PeerID session that ended lands back on the home page
LOGIN_REDIRECT_URL = "/"  # where the PeerID callback goes without a ``next``

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_piauth": {"handlers": ["console"], "level": "INFO"}},
}
