"""System checks: configuration mistakes found at start-up rather than at the first sign-in."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import piauth_settings

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _is_loopback(host: str | None) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def plain_http_warning(key: str, url: str | None, *, travels: str, hint: str,
                       id: str) -> list[checks.CheckMessage]:
    """A deploy warning when the URL in ``PIAUTH[key]`` is plain http to another host
    than this machine (outside ``DEBUG``): what ``travels`` there would go unencrypted."""
    if settings.DEBUG or not url:
        return []
    parts = urlsplit(url)
    if parts.scheme == "https" or _is_loopback(parts.hostname):
        return []
    return [checks.Warning(f"PIAUTH[{key!r}] is {url!r}: {travels} would travel unencrypted.",
                           hint=hint, id=id)]


def _listed_backend_classes() -> list[type]:
    classes = []
    for path in settings.AUTHENTICATION_BACKENDS:
        try:
            classes.append(import_string(path))
        except ImportError:
            continue
    return classes


@checks.register(checks.Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        piauth_settings.PI_API_URL  # noqa: B018  (reading validates the whole dict)
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="piauth.E001")]
    return []


@checks.register()
def check_backends(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from .backends import PiBackend

    listed = any(
        isinstance(cls, type) and issubclass(cls, PiBackend) for cls in _listed_backend_classes()
    )
    if not listed:
        return [checks.Warning(
            "No PiBackend in AUTHENTICATION_BACKENDS: session sign-in (piauth:pi-login) "
            "cannot start sessions.",
            hint="Add 'django_piauth.backends.PiBackend' to AUTHENTICATION_BACKENDS.",
            id="piauth.W002",
        )]
    return []


def check_app_installed(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A django_piauth backend listed while the app itself is not installed."""
    if apps.is_installed("django_piauth"):
        return []
    ours = [path for path in settings.AUTHENTICATION_BACKENDS
            if path.startswith("django_piauth.")]
    if not ours:
        return []
    return [checks.Error(
        f"{', '.join(ours)} is in AUTHENTICATION_BACKENDS but 'django_piauth' is not in "
        "INSTALLED_APPS.",
        hint="Add 'django_piauth' to INSTALLED_APPS and run migrate.",
        id="piauth.E003",
    )]


# Registered here rather than in AppConfig.ready(): it must run precisely when the app
# is not installed, i.e. whenever anything imports this package's checks.
checks.register(check_app_installed)


@checks.register(checks.Tags.security, deploy=True)
def check_https_upstream(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """piauth.W004, W014, W015 (deploy): secrets would travel in clear (the SAFE
    Launcher's is piauth.W043)."""
    try:
        pi_api_url = piauth_settings.PI_API_URL
        peerid_used = piauth_settings.PEERID_CLIENT_ID is not None
        peerid_url = piauth_settings.PEERID_URL
        redirect_uri = piauth_settings.PEERID_REDIRECT_URI
    except ImproperlyConfigured:
        return []  # reported by check_settings
    messages = plain_http_warning(
        "PI_API_URL", pi_api_url, travels="access tokens",
        hint="Use the https URL of the Pi Platform API.", id="piauth.W004")
    if peerid_used:
        messages += plain_http_warning(
            "PEERID_URL", peerid_url,
            travels="passwords, the client secret and PeerID tokens",
            hint="Use the https URL of PeerID.", id="piauth.W014")
        messages += plain_http_warning(
            "PEERID_REDIRECT_URI", redirect_uri,
            travels="authorization codes (and the session cookie set on the callback)",
            hint="Use an https callback URL.", id="piauth.W015")
    return messages


@checks.register(deploy=True)
def check_server_api_key(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        key = piauth_settings.PI_SERVER_API_KEY
    except ImproperlyConfigured:
        return []
    if key is not None and not key.strip():
        return [checks.Error(
            "PIAUTH['PI_SERVER_API_KEY'] is an empty string.",
            hint="Set it from the environment, or leave it out (None) if the app makes no "
                 "server-side calls.",
            id="piauth.E005",
        )]
    if key is None:
        return [checks.Warning(
            "PIAUTH['PI_SERVER_API_KEY'] is not set: server-side Pi Platform calls "
            "(payments) will fail.",
            hint="Set it from the environment, or silence piauth.W006 if the app makes no "
                 "server-side calls.",
            id="piauth.W006",
        )]
    return []


@checks.register(checks.Tags.caches)
def check_token_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        alias = piauth_settings.CACHE_ALIAS
    except ImproperlyConfigured:
        return []
    cache_settings = settings.CACHES.get(alias)
    if cache_settings is None:
        return [checks.Error(
            f"PIAUTH['CACHE_ALIAS'] is {alias!r}, which is not in CACHES.",
            hint=f"Use one of {sorted(settings.CACHES)}.",
            id="piauth.E007",
        )]
    if cache_settings.get("BACKEND", "").endswith("DummyCache"):
        return [checks.Warning(
            f"The cache {alias!r} is a DummyCache: every request with a Pi token calls "
            "the Pi Platform, and concurrent requests are not coalesced across processes.",
            hint="Use Redis or Memcached (shared by every process) or at least locmem.",
            id="piauth.W008",
        )]
    return []


def _peerid_backend_listed() -> bool:
    from .backends import PeerIDBackend

    return any(isinstance(cls, type) and issubclass(cls, PeerIDBackend)
               for cls in _listed_backend_classes())


@checks.register()
def check_peerid(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        client_id = piauth_settings.PEERID_CLIENT_ID
        secret = piauth_settings.PEERID_CLIENT_SECRET
    except ImproperlyConfigured:
        return []
    messages: list[checks.CheckMessage] = []
    if _peerid_backend_listed() and client_id is None:
        messages.append(checks.Error(
            "PeerIDBackend is in AUTHENTICATION_BACKENDS but PIAUTH['PEERID_CLIENT_ID'] is "
            "not set.", hint="Set it to your PeerID app's id.", id="piauth.E009"))
    if client_id is not None and not secret:
        messages.append(checks.Warning(
            "PIAUTH['PEERID_CLIENT_SECRET'] is not set: the authorization-code flow and "
            "token refresh will fail (the password flow works without it).",
            id="piauth.W010"))
    middleware = list(settings.MIDDLEWARE)
    ours = "django_piauth.middleware.PeerIDRefreshMiddleware"
    auth = "django.contrib.auth.middleware.AuthenticationMiddleware"
    if ours in middleware and (auth not in middleware
                               or middleware.index(ours) < middleware.index(auth)):
        messages.append(checks.Error(
            "PeerIDRefreshMiddleware must come after AuthenticationMiddleware in MIDDLEWARE.",
            id="piauth.E011"))
    if client_id is not None and ours not in middleware:
        messages += _sqlite_atomic_requests_warnings()
    return messages


def _sqlite_atomic_requests_warnings() -> list[checks.CheckMessage]:
    """On SQLite, a refresh made inside a view's transaction cannot be committed apart
    from it (the transaction holds the database's one write lock); see durable.py."""
    from django.db import connections

    return [checks.Warning(
        f"The database {alias!r} is SQLite with ATOMIC_REQUESTS and PeerIDRefreshMiddleware "
        "is not installed: a PeerID refresh made by PeerIDAuthentication inside a view "
        "that then fails is rolled back, while PeerID has already retired the old tokens "
        "(the user is signed out).",
        hint="Add 'django_piauth.middleware.PeerIDRefreshMiddleware' after "
             "AuthenticationMiddleware: it refreshes before the view's transaction starts.",
        id="piauth.W016",
    ) for alias in connections
        if connections[alias].vendor == "sqlite"
        and connections[alias].settings_dict.get("ATOMIC_REQUESTS")]


@checks.register()
def check_sqlite_transaction_mode(app_configs: Any = None,
                                  **kwargs: Any) -> list[checks.CheckMessage]:
    """Concurrent first sign-ins on SQLite in Django's default DEFERRED mode fail with
    "database is locked" (measured: 30% of 16-way first sign-ins answered 500 before the
    username search left the transaction); IMMEDIATE makes writers queue instead."""
    from django.db import connections

    return [checks.Warning(
        f"The database {alias!r} is SQLite without "
        "OPTIONS['transaction_mode'] = 'IMMEDIATE': concurrent writers (the first requests "
        "of new Pioneers, PeerID refreshes, payment steps) can fail at once with "
        "\"database is locked\" instead of waiting their turn.",
        hint=f"Set DATABASES[{alias!r}]['OPTIONS'] = {{'timeout': 20, "
             "'transaction_mode': 'IMMEDIATE'}.",
        id="piauth.W017",
    ) for alias in connections
        if connections[alias].vendor == "sqlite"
        and str(connections[alias].settings_dict.get("OPTIONS", {})
                .get("transaction_mode", "")).upper() != "IMMEDIATE"]


@checks.register(checks.Tags.security)
def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from .crypto import build_keys

    try:
        build_keys()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="piauth.E012")]
    return []


@checks.register(checks.Tags.security, deploy=True)
def check_encryption_keys_configured(app_configs: Any = None,
                                     **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        keys = piauth_settings.TOKEN_ENCRYPTION_KEYS
        stores_tokens = (piauth_settings.PEERID_CLIENT_ID is not None
                         or piauth_settings.SAFE_APP is not None)
    except ImproperlyConfigured:
        return []
    if stores_tokens and not keys:
        return [checks.Warning(
            "PIAUTH['TOKEN_ENCRYPTION_KEYS'] is not set: stored PeerID and SAFE tokens are "
            "encrypted with keys derived from SECRET_KEY, so changing SECRET_KEY without "
            "keeping the old one in SECRET_KEY_FALLBACKS makes them unreadable.",
            hint="Set TOKEN_ENCRYPTION_KEYS to a list of Fernet keys "
                 "(cryptography.fernet.Fernet.generate_key()), newest first.",
            id="piauth.W013")]
    return []
