"""The one ``PIAUTH`` settings dict, read through :data:`piauth_settings`.

Every key has a default. The dict is validated the first time a value is read
after start-up or after ``override_settings(PIAUTH=...)``; a misspelled key is an
``ImproperlyConfigured`` error that names the nearest valid key.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

SETTINGS_NAME = "PIAUTH"

#: The Pi blockchain's networks: passphrase -> its public Horizon API.
PI_NETWORKS: dict[str, str] = {
    "Pi Network": "https://api.mainnet.minepi.com",
    "Pi Testnet": "https://api.testnet.minepi.com",
}
T = TypeVar("T")


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _http_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _str_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)


def _optional_int(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _optional_http_url(value: Any) -> bool:
    return value is None or _http_url(value)


def _optional_dict(value: Any) -> bool:
    return value is None or isinstance(value, dict)


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


# key: (default, validator, what the validator wants)
_SPEC: dict[str, tuple[Any, Callable[[Any], bool], str]] = {
    "PI_API_URL": ("https://api.minepi.com", _http_url, "an http(s) URL"),
    "PI_SERVER_API_KEY": (None, _optional_str, "a string or None"),
    "PI_REQUIRED_SCOPES": ((), _str_list, "a list of scope names"),
    "CONNECT_TIMEOUT": (3.0, _positive_number, "a positive number of seconds"),
    "READ_TIMEOUT": (5.0, _positive_number, "a positive number of seconds"),
    "CALL_DEADLINE": (None, lambda v: v is None or _positive_number(v),
                      "a positive number of seconds or None (2 x READ_TIMEOUT + CONNECT_TIMEOUT)"),
    "MAX_RESPONSE_BYTES": (256 * 1024, _positive_int, "a positive whole number of bytes"),
    "MAX_TOKEN_BYTES": (4096, _positive_int, "a positive whole number of bytes"),
    "RETRY_AFTER": (5, _positive_int, "a positive whole number of seconds"),
    "CACHE_ALIAS": ("default", lambda v: isinstance(v, str) and bool(v), "a CACHES alias"),
    "TOKEN_CACHE_TTL": (300, _positive_number, "a positive number of seconds"),
    "REJECTED_TOKEN_CACHE_TTL": (30, _positive_number, "a positive number of seconds"),
    "LOCAL_CACHE_TTL": (10, lambda v: _positive_number(v) or v == 0,
                        "a number of seconds, 0 or more"),
    "LAST_VERIFIED_INTERVAL": (300, _positive_number, "a positive number of seconds"),
    # PeerID (Peerplays)
    "PEERID_URL": ("https://peerid.peerplays.download", _http_url, "an http(s) URL"),
    "PEERID_CLIENT_ID": (None, _optional_int, "an integer (PeerID app id) or None"),
    "PEERID_CLIENT_SECRET": (None, _optional_str, "a string or None"),
    "PEERID_REDIRECT_URI": (None, _optional_http_url, "an absolute http(s) URL or None"),
    "PEERID_REFRESH_MARGIN": (60, lambda v: _positive_number(v) or v == 0,
                              "a number of seconds, 0 or more"),
    # A phone number is no secret: off, a password is required (docs/howto/peerid.md).
    "PEERID_ALLOW_MOBILE_SIGN_IN": (False, _bool, "True or False"),
    # Encryption at rest of PeerID tokens and the SAFE token
    "TOKEN_ENCRYPTION_KEYS": ((), _str_list, "a list of Fernet keys, newest first"),
    # SAFE Launcher
    "SAFE_LAUNCHER_URL": ("http://localhost:8100", _http_url, "an http(s) URL"),
    "SAFE_APP": (None, _optional_dict, "a dict with name, id, version and vendor"),
    "SAFE_PERMISSIONS": ((), _str_list, "a list of permission names"),
    "SAFE_AUTHORIZE_TIMEOUT": (300, _positive_number, "a positive number of seconds"),
    # Pi payments (user to app)
    "PI_PAYMENT_HANDLER": ("django_piauth.payments.PaymentHandler",
                           lambda v: isinstance(v, str) and "." in v,
                           "a dotted path to a PaymentHandler subclass"),
    "PI_PAYMENT_WAIT": (2.0, lambda v: _positive_number(v) or v == 0,
                        "a number of seconds, 0 or more"),
    "PI_PAYMENT_SETTLE_AGE": (3600, _positive_number, "a positive number of seconds"),
    # Pi payouts (app to user)
    "PI_WALLET_SEED": (None, _optional_str, "the app wallet's secret seed (a string) or None"),
    "PI_NETWORK": ("Pi Network", lambda v: v in PI_NETWORKS,
                   '"Pi Network" (mainnet) or "Pi Testnet"'),
    "PI_HORIZON_URL": (None, _optional_http_url,
                       "an http(s) URL or None (the Horizon of PI_NETWORK)"),
    "WWW_AUTHENTICATE_REALM": ("api", lambda v: isinstance(v, str) and '"' not in v, "a string"),
}

DEFAULTS: dict[str, Any] = {key: spec[0] for key, spec in _SPEC.items()}


def validate(user_settings: Any) -> dict[str, Any]:
    """Return the effective settings: the defaults overlaid with ``user_settings``."""
    if user_settings is None:
        user_settings = {}
    if not isinstance(user_settings, Mapping):
        raise ImproperlyConfigured(f"{SETTINGS_NAME} must be a dict, not {type(user_settings)!r}.")
    for key, value in user_settings.items():
        if key not in _SPEC:
            nearest = difflib.get_close_matches(str(key), _SPEC, n=1)
            hint = f" Did you mean {nearest[0]!r}?" if nearest else ""
            raise ImproperlyConfigured(f"{SETTINGS_NAME}[{key!r}] is not a known key.{hint}")
        _default, is_valid, wanted = _SPEC[key]
        if not is_valid(value):
            # The value itself is not echoed: it may be a secret.
            raise ImproperlyConfigured(
                f"{SETTINGS_NAME}[{key!r}] must be {wanted}, not a {type(value).__name__}."
            )
    return {**DEFAULTS, **user_settings}


def default_deadline(timeout: tuple[float, float]) -> float:
    """The deadline of a whole call with this (connect, read) timeout when ``CALL_DEADLINE``
    is not set: time to connect, then two full read timeouts."""
    return float(timeout[0] + 2 * timeout[1])


class PiAuthSettings:
    """Attribute access to the validated ``PIAUTH`` values (``piauth_settings.PI_API_URL``)."""

    def __init__(self) -> None:
        self._values: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        values = self._values
        if values is None:
            with self._lock:
                values = self._values = validate(getattr(settings, SETTINGS_NAME, None))
        return values

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in _SPEC:
            raise AttributeError(name)
        return self._load()[name]

    @property
    def timeout(self) -> tuple[float, float]:
        """The (connect, read) timeout every upstream call uses unless it has its own."""
        values = self._load()
        return (values["CONNECT_TIMEOUT"], values["READ_TIMEOUT"])

    @property
    def deadline(self) -> float:
        """Seconds a whole upstream call may take (connect, headers and body), however
        slowly the upstream drips its answer: ``CALL_DEADLINE``, by default
        ``CONNECT_TIMEOUT + 2 * READ_TIMEOUT``."""
        values = self._load()
        if values["CALL_DEADLINE"] is not None:
            return float(values["CALL_DEADLINE"])
        return default_deadline((values["CONNECT_TIMEOUT"], values["READ_TIMEOUT"]))

    @property
    def horizon_url(self) -> str:
        """``PI_HORIZON_URL``, by default the public Horizon of ``PI_NETWORK``."""
        values = self._load()
        return str(values["PI_HORIZON_URL"] or PI_NETWORKS[values["PI_NETWORK"]])

    def reload(self) -> None:
        with self._lock:
            self._values = None
        for callback in list(_reload_callbacks):
            callback()


piauth_settings = PiAuthSettings()

_reload_callbacks: list[Callable[[], None]] = []


def on_reload(callback: Callable[[], None]) -> Callable[[], None]:
    """Register ``callback`` to run whenever the settings change (objects built from them)."""
    _reload_callbacks.append(callback)
    return callback


def built_from_settings(build: Callable[[], T]) -> Callable[[], T]:
    """``build()`` once, and again after the settings change: for clients and keys."""
    built: list[T] = []

    def get() -> T:
        if not built:
            built[:] = [build()]
        return built[0]

    on_reload(built.clear)
    return get


def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTINGS_NAME, "AUTHENTICATION_BACKENDS", "DEBUG", "SECRET_KEY",
                   "SECRET_KEY_FALLBACKS", "CACHES"):
        piauth_settings.reload()


setting_changed.connect(_reload_on_change, dispatch_uid="django_piauth.conf.reload")
