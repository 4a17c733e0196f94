"""From a token to a verified identity: the format check and the upstream call.

Every caller (backend, DRF class, views) goes through here, so the rules for what a
token may look like and how it is verified live in one place.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from django.conf import settings

from .conf import piauth_settings
from .exceptions import MalformedToken
from .providers.pi import PiIdentity, get_pi_client

logger = logging.getLogger("django_piauth")


def check_token_format(token: object) -> str:
    """Return ``token`` if it can be a bearer token, else raise ``MalformedToken``.

    A token is printable ASCII without spaces and at most ``MAX_TOKEN_BYTES`` long;
    anything else is refused before any upstream call.
    """
    if not isinstance(token, str) or not token:
        raise MalformedToken("the access token is empty")
    if len(token) > piauth_settings.MAX_TOKEN_BYTES:
        raise MalformedToken("the access token is too long")
    if not all("\x21" <= ch <= "\x7e" for ch in token):
        raise MalformedToken("the access token has characters a token cannot have")
    return token


def token_digest(token: str) -> str:
    """A keyed, irreversible digest of ``token``: what logs (and caches) may hold."""
    key = f"django_piauth.token:{settings.SECRET_KEY}".encode()
    return hmac.new(key, token.encode("ascii"), hashlib.sha256).hexdigest()


def verify_pi_token(token: object) -> PiIdentity:
    """Ask the Pi Platform who ``token`` belongs to.

    Raises ``MalformedToken``/``InvalidToken`` (no) or ``UpstreamUnavailable`` (cannot say).
    """
    token = check_token_format(token)
    digest = token_digest(token)[:12]
    logger.debug("verifying Pi access token %s with /v2/me", digest)
    identity = get_pi_client().me(token)
    logger.debug("Pi access token %s belongs to uid %s", digest, identity.uid)
    return identity
