"""The SAFE grant: this Django project authorized by a SAFE Launcher, kept in the database.

- :func:`authorize_and_store` asks the Launcher and stores the grant (the token encrypted
  at rest). It waits for a person: only ``manage.py piauth_safe_authorize`` calls it.
- :func:`check_grant` asks the Launcher whether the stored token still works.
- :func:`revoke` revokes the token at the Launcher, then forgets it.
- :func:`authorized_request` makes an authorised call with the stored token. It never
  waits for a person: without a usable grant it raises :class:`SafeNotAuthorized` at once,
  and a 401 marks the grant dead and raises :class:`SafeGrantDead`; both name the command
  to run.

A grant is found by (Launcher URL, app id, app vendor), as the Launcher itself keys the
app's data. Revoking keeps the row (token cleared, ``is_valid`` false) as a record of
what was granted and of the app identity used at that Launcher.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from .conf import piauth_settings
from .exceptions import SafeGrantDead, SafeNotAuthorized, UpstreamUnavailable
from .models import SafeGrant
from .providers.http import UpstreamResponse
from .providers.safe import (
    AUTHORIZE_COMMAND,
    SafeApp,
    app_from_setting,
    get_safe_client,
    permissions_from_setting,
)

logger = logging.getLogger("django_piauth.safe")

__all__ = [
    "AUTHORIZE_COMMAND",
    "authorize_and_store",
    "authorized_request",
    "check_grant",
    "configured_app",
    "configured_permissions",
    "get_grant",
    "get_token",
    "identity_change_message",
    "launcher_url",
    "mark_dead",
    "previous_identity",
    "revoke",
]


# Settings -------------------------------------------------------------------------------

def listed_permissions(permissions: Any) -> str:
    """Permissions as the commands print them."""
    return ", ".join(permissions) or "(none)"


def configured_app() -> SafeApp:
    """``PIAUTH["SAFE_APP"]`` as a :class:`SafeApp`; ``ImproperlyConfigured`` if unusable."""
    return app_from_setting(piauth_settings.SAFE_APP)


def configured_permissions() -> tuple[str, ...]:
    """``PIAUTH["SAFE_PERMISSIONS"]``; ``ImproperlyConfigured`` on an unknown permission."""
    return permissions_from_setting(piauth_settings.SAFE_PERMISSIONS)


def launcher_url() -> str:
    """``PIAUTH["SAFE_LAUNCHER_URL"]`` without a trailing slash, as grants store it."""
    url: str = piauth_settings.SAFE_LAUNCHER_URL  # validated: an http(s) URL
    return url.rstrip("/")


# Lookups --------------------------------------------------------------------------------

def get_grant(app: SafeApp | None = None) -> SafeGrant | None:
    """The grant of ``app`` (default: the configured one) at the configured Launcher."""
    app = app or configured_app()
    return SafeGrant.objects.filter(
        launcher_url=launcher_url(), app_id=app.id, app_vendor=app.vendor
    ).first()


def previous_identity(app: SafeApp | None = None, *,
                      using: str | None = None) -> tuple[str, str] | None:
    """The (id, vendor) this project was last authorized under at the configured Launcher,
    when it is not ``app``'s (default: the configured app); otherwise None.

    Not None means ``id`` or ``vendor`` changed since: the Launcher keeps the app's data
    under the old pair, and the new one starts empty. Authorizing under the new pair
    makes it the last one.
    """
    app = app or configured_app()
    latest = (
        SafeGrant.objects.using(using).filter(launcher_url=launcher_url())
        .order_by("-authorized_at").values_list("app_id", "app_vendor").first()
    )
    if latest is None or tuple(latest) == (app.id, app.vendor):
        return None
    return (latest[0], latest[1])


def identity_change_message(app: SafeApp, previous: tuple[str, str]) -> str:
    """Explain that the app's identity at the Launcher changed, and what that loses."""
    return (
        f"PIAUTH['SAFE_APP'] has id {app.id!r} and vendor {app.vendor!r}, but this project "
        f"was last authorized at the SAFE Launcher at {launcher_url()} as id "
        f"{previous[0]!r}, vendor {previous[1]!r}. The Launcher keeps an app's data under "
        "its id and vendor: the new pair starts with no data, and the data stored under "
        "the old pair stays out of its reach."
    )


def _label(grant: SafeGrant) -> str:
    return f"{grant.app_name} (id {grant.app_id!r}, vendor {grant.app_vendor!r})"


def _unusable(grant: SafeGrant | None, app: SafeApp) -> SafeNotAuthorized | None:
    """Why ``grant`` cannot be used, as the error to raise; None when it can."""
    hint = f"run `{AUTHORIZE_COMMAND}`"
    if grant is None:
        return SafeNotAuthorized(
            f"{app.name} (id {app.id!r}, vendor {app.vendor!r}) is not authorized by the "
            f"SAFE Launcher at {launcher_url()}: {hint}"
        )
    if not grant.is_valid and grant.token:
        when = grant.invalidated_at.isoformat() if grant.invalidated_at else "unknown"
        return SafeGrantDead(
            f"the SAFE grant of {_label(grant)} is dead since {when} (the Launcher refused "
            f"its token): {hint}"
        )
    if grant.token is None:
        return SafeNotAuthorized(
            f"the stored SAFE token of {_label(grant)} cannot be decrypted with the "
            f"configured TOKEN_ENCRYPTION_KEYS: {hint}"
        )
    if not grant.token:
        return SafeNotAuthorized(
            f"the SAFE grant of {_label(grant)} was revoked (no token stored): {hint}"
        )
    return None


def _usable_grant(app: SafeApp) -> tuple[SafeGrant, str]:
    grant = get_grant(app)
    problem = _unusable(grant, app)
    if problem is not None or grant is None or not grant.token:
        raise problem or SafeNotAuthorized(f"run `{AUTHORIZE_COMMAND}`")
    return grant, grant.token


def get_token(app: SafeApp | None = None) -> str:
    """The stored token of a valid grant, without asking the Launcher.

    Raises :class:`SafeNotAuthorized` (or :class:`SafeGrantDead`) naming the command to run.
    """
    return _usable_grant(app or configured_app())[1]


# Changes --------------------------------------------------------------------------------

def authorize_and_store(*, timeout: float | None = None) -> SafeGrant:
    """Ask the Launcher to authorize the configured app and permissions; store the grant.

    Blocks until the person at the Launcher answers, up to ``timeout`` seconds (default
    ``SAFE_AUTHORIZE_TIMEOUT``): only the management command calls it, never a web
    request. The settings are validated before any request. A denial, an error or an
    outage raises and stores nothing (an existing grant is left as it was).
    """
    app = configured_app()
    permissions = configured_permissions()
    url = launcher_url()
    result = get_safe_client().authorize(app, permissions, timeout=timeout)
    now = timezone.now()
    with transaction.atomic():
        grant, _created = SafeGrant.objects.update_or_create(
            launcher_url=url,
            app_id=app.id,
            app_vendor=app.vendor,
            defaults={
                "app_name": app.name,
                "app_version": app.version,
                "token": result.token,
                "permissions_requested": list(permissions),
                "permissions_granted": list(result.permissions),
                "authorized_at": now,
                "last_checked_at": now,
                "is_valid": True,
                "invalidated_at": None,
            },
        )
    logger.info("the SAFE Launcher at %s authorized %s with permissions %s",
                url, app, list(result.permissions))
    return grant


def mark_dead(grant: SafeGrant) -> bool:
    """Record that the Launcher refused ``grant``'s token (401). True if this call did.

    A grant re-authorized since ``grant`` was read (another ``authorized_at``) is left
    alone: its new token is not the one that was refused.
    """
    now = timezone.now()
    updated = SafeGrant.objects.filter(
        pk=grant.pk, authorized_at=grant.authorized_at, is_valid=True
    ).update(is_valid=False, invalidated_at=now, last_checked_at=now)
    if updated:
        grant.is_valid, grant.invalidated_at, grant.last_checked_at = False, now, now
        logger.warning(
            "the SAFE Launcher at %s no longer accepts the token of %s: the grant is "
            "marked dead; run `%s`", grant.launcher_url, _label(grant), AUTHORIZE_COMMAND,
        )
    return bool(updated)


def check_grant(grant: SafeGrant) -> bool:
    """``GET /auth`` with the stored token: True (and ``last_checked_at`` updated) while
    the Launcher accepts it, False after marking the grant dead.

    A grant without a usable token is False without a call. An outage raises
    :class:`UpstreamUnavailable` and changes nothing.
    """
    if not grant.token:
        return False
    if not get_safe_client().check(grant.token):
        mark_dead(grant)
        return False
    now = timezone.now()
    fields: dict[str, Any] = {"last_checked_at": now}
    if not grant.is_valid:  # the Launcher accepts it again: believe it
        fields.update(is_valid=True, invalidated_at=None)
    SafeGrant.objects.filter(pk=grant.pk, authorized_at=grant.authorized_at).update(**fields)
    for name, value in fields.items():
        setattr(grant, name, value)
    return True


def _forget(grant: SafeGrant) -> None:
    now = timezone.now()
    grant.token = ""
    if grant.is_valid:
        grant.is_valid, grant.invalidated_at = False, now
    grant.save(update_fields=["token", "is_valid", "invalidated_at"])


def revoke(grant: SafeGrant, *, forget_if_unreachable: bool = False) -> str:
    """``DELETE /auth`` with the stored token, then forget the token (the row stays).

    Returns ``"revoked"``, ``"already dead"`` (the Launcher answered 401), ``"nothing
    stored"`` (no token to revoke), or ``"forgotten"`` (the Launcher could not be reached
    and ``forget_if_unreachable`` was set). Otherwise an outage raises and keeps the token,
    which may still work at the Launcher.
    """
    if not grant.token:
        if grant.token is None:  # undecryptable: useless, clear it
            _forget(grant)
        return "nothing stored"
    try:
        revoked = get_safe_client().revoke(grant.token)
    except UpstreamUnavailable:
        if not forget_if_unreachable:
            raise
        outcome = "forgotten"
    else:
        outcome = "revoked" if revoked else "already dead"
    _forget(grant)
    logger.info("SAFE grant of %s at %s: %s; the token is forgotten",
                _label(grant), grant.launcher_url, outcome)
    return outcome


def authorized_request(method: str, path: str, *, json_body: Any = None,
                       headers: dict[str, str] | None = None,
                       max_bytes: int | None = None) -> UpstreamResponse:
    """An authorised call to the configured Launcher with the stored token.

    Safe in a web request: it never waits for a person. Without a usable grant it
    raises :class:`SafeNotAuthorized` before any call; a 401 marks the grant dead and
    raises :class:`SafeGrantDead`; both name ``manage.py piauth_safe_authorize``.
    5xx and transport failures raise :class:`UpstreamUnavailable`; any other answer
    is returned.
    """
    grant, token = _usable_grant(configured_app())
    try:
        return get_safe_client().request(method, path, token, json_body=json_body,
                                         headers=headers, max_bytes=max_bytes)
    except SafeGrantDead:
        mark_dead(grant)
        raise SafeGrantDead(
            f"the SAFE Launcher at {grant.launcher_url} no longer accepts the token of "
            f"{_label(grant)} (revoked, the app removed, or the Launcher restarted): the "
            f"grant is marked dead; run `{AUTHORIZE_COMMAND}` to authorize again"
        ) from None
