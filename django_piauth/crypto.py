"""Encryption at rest for the tokens we must keep (PeerID tokens, the SAFE token).

Fernet keys come from ``PIAUTH["TOKEN_ENCRYPTION_KEYS"]``, newest first: the newest
encrypts, every key decrypts, so keys rotate without losing rows (then run
``manage.py piauth_reencrypt``). Without configured keys, keys are derived from
``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` (a deploy check says so).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .conf import built_from_settings, piauth_settings


class UndecryptableValue(Exception):
    """A stored value none of the configured keys opens (a key was dropped too early)."""


def _derived_key(secret: str) -> bytes:
    digest = hashlib.sha256(f"django_piauth.encryption:{secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest)


def keys_from_secret_key() -> bool:
    """True when no ``TOKEN_ENCRYPTION_KEYS`` are configured."""
    return not piauth_settings.TOKEN_ENCRYPTION_KEYS


def build_keys() -> MultiFernet:
    configured = list(piauth_settings.TOKEN_ENCRYPTION_KEYS)
    if not configured:
        secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
        return MultiFernet([Fernet(_derived_key(secret)) for secret in secrets])
    fernets = []
    for position, key in enumerate(configured):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"PIAUTH['TOKEN_ENCRYPTION_KEYS'][{position}] is not a Fernet key "
                "(32 url-safe base64-encoded bytes; make one with "
                "cryptography.fernet.Fernet.generate_key())."
            ) from None
    return MultiFernet(fernets)


_keys = built_from_settings(build_keys)


def encrypt(plaintext: str) -> str:
    return _keys().encrypt(plaintext.encode()).decode("ascii")


def decrypt(ciphertext: str) -> str:
    try:
        return _keys().decrypt(ciphertext.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise UndecryptableValue("no configured key decrypts this value") from None


def reencrypt(ciphertext: str) -> str:
    """The same value encrypted under the newest key."""
    try:
        return _keys().rotate(ciphertext.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise UndecryptableValue("no configured key decrypts this value") from None
