"""System checks of the SAFE Launcher settings: found at start-up, before anybody waits
at the Launcher for a request that cannot succeed.

Nothing is checked while SAFE is not used (``SAFE_APP`` unset and no ``SAFE_PERMISSIONS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, router

from .checks import plain_http_warning
from .conf import piauth_settings
from .providers.safe import (
    KNOWN_PERMISSIONS,
    app_from_setting,
    app_problems,
    unknown_permissions,
)

_IDENTITY_HINT = ("Choose the app's id and vendor once: the Launcher keeps the app's data "
                  "under them.")


@checks.register()
def check_safe_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """piauth.E040: ``SAFE_APP`` incomplete; piauth.E041: unknown ``SAFE_PERMISSIONS``."""
    try:
        app = piauth_settings.SAFE_APP
        permissions = piauth_settings.SAFE_PERMISSIONS
    except ImproperlyConfigured:
        return []  # reported by piauth.E001
    messages: list[checks.CheckMessage] = []
    if app is None:
        if permissions:
            messages.append(checks.Error(
                "PIAUTH['SAFE_PERMISSIONS'] is set but PIAUTH['SAFE_APP'] is not: the SAFE "
                "Launcher authorizes an app (name, id, version, vendor).",
                hint='Set PIAUTH["SAFE_APP"] = {"name": ..., "id": ..., "version": ..., '
                     f'"vendor": ...}}. {_IDENTITY_HINT}',
                id="piauth.E040",
            ))
    else:
        problems = app_problems(app)
        if problems:
            messages.append(checks.Error(
                f"PIAUTH['SAFE_APP']: {'; '.join(problems)}.",
                hint=f"Give name, id, version and vendor as non-empty strings. "
                     f"{_IDENTITY_HINT}",
                id="piauth.E040",
            ))
    unknown = unknown_permissions(permissions)
    if unknown:
        messages.append(checks.Error(
            f"PIAUTH['SAFE_PERMISSIONS'] has unknown permission(s) "
            f"{', '.join(map(repr, unknown))}: the SAFE Launcher would refuse the request.",
            hint=f"Use {' and/or '.join(KNOWN_PERMISSIONS)}.",
            id="piauth.E041",
        ))
    return messages


@checks.register(checks.Tags.database)
def check_safe_app_identity(app_configs: Any = None, databases: Sequence[str] | None = None,
                            **kwargs: Any) -> list[checks.CheckMessage]:
    """piauth.W042: ``SAFE_APP``'s id or vendor differs from the last authorized one.

    A database check: runs with ``migrate`` and ``check --database default``.
    """
    from .models import SafeGrant
    from .safe import identity_change_message, previous_identity

    database = router.db_for_read(SafeGrant)
    if not databases or database not in databases:
        return []
    try:
        app = app_from_setting(piauth_settings.SAFE_APP)
    except ImproperlyConfigured:
        return []  # not used, or reported by piauth.E001 / piauth.E040
    try:
        previous = previous_identity(app, using=database)
    except DatabaseError:
        return []  # not migrated yet: nothing was authorized
    if previous is None:
        return []
    return [checks.Warning(
        identity_change_message(app, previous),
        hint=f"Restore id {previous[0]!r} and vendor {previous[1]!r} in PIAUTH['SAFE_APP'] "
             "to keep the app's data, or run `manage.py piauth_safe_authorize` to start "
             "afresh under the new ones (this warning then stops).",
        id="piauth.W042",
    )]


@checks.register(checks.Tags.security, deploy=True)
def check_safe_launcher_url(app_configs: Any = None,
                            **kwargs: Any) -> list[checks.CheckMessage]:
    """piauth.W043 (deploy): the SAFE token would travel in clear to another host."""
    try:
        app = piauth_settings.SAFE_APP
        url = piauth_settings.SAFE_LAUNCHER_URL
    except ImproperlyConfigured:
        return []
    if app is None:
        return []
    return plain_http_warning(
        "SAFE_LAUNCHER_URL", url, travels="the SAFE token",
        hint="Run the Launcher on the same machine (http://localhost:8100) or reach it "
             "over https.",
        id="piauth.W043")
