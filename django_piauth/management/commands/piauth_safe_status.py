"""``manage.py piauth_safe_status``: the SAFE grant as stored, and whether the Launcher
still accepts its token (``GET /auth``).

Prints the Launcher, the app, the permissions asked for and granted, when it was
authorized and last checked, and the token's validity. Exits 0 only when the grant is
valid; a dead grant is marked so, and the message names the command to run.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...exceptions import UpstreamError, UpstreamUnavailable
from ...models import SafeGrant
from ...providers.safe import SafeApp
from ...safe import (
    AUTHORIZE_COMMAND,
    check_grant,
    configured_app,
    configured_permissions,
    get_grant,
    identity_change_message,
    launcher_url,
    listed_permissions,
    previous_identity,
)


def _when(moment: Any) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"


class Command(BaseCommand):
    help = ("Show the SAFE grant (app, permissions, validity) and check its token with the "
            "SAFE Launcher (GET /auth). Exits non-zero unless the grant is valid.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-check", action="store_true",
            help="Show what is stored without asking the Launcher.",
        )

    def line(self, label: str, value: str) -> None:
        self.stdout.write(f"{label:<14} {value}")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            app = configured_app()
            permissions = configured_permissions()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        hint = f"run `{AUTHORIZE_COMMAND}`"
        self.line("SAFE Launcher", launcher_url())
        self.line("App", str(app))
        self.line("Configured", f"permissions {listed_permissions(permissions)}")

        previous = previous_identity(app)
        if previous is not None:
            self.stderr.write(self.style.WARNING(
                f"Warning: {identity_change_message(app, previous)}"))

        grant = get_grant(app)
        if grant is None:
            self.line("Grant", f"none: {hint}")
            raise CommandError(f"Not authorized by the SAFE Launcher: {hint}.")
        self._describe(grant, app, permissions)

        if grant.token is None:
            self.line("Token", f"cannot be decrypted with the configured keys: {hint}")
            raise CommandError(f"The stored SAFE token cannot be decrypted: {hint}.")
        if not grant.token:
            self.line("Token", f"none (revoked {_when(grant.invalidated_at)}): {hint}")
            raise CommandError(f"The SAFE grant was revoked: {hint}.")
        if options["no_check"]:
            state = "valid" if grant.is_valid else f"DEAD since {_when(grant.invalidated_at)}"
            self.line("Token", f"{state} (as stored; not checked)")
            if not grant.is_valid:
                raise CommandError(f"The SAFE grant is dead: {hint}.")
            return
        try:
            valid = check_grant(grant)
        except (UpstreamUnavailable, UpstreamError) as exc:
            self.line("Token", f"not checked: {exc}")
            raise CommandError(f"Cannot check the SAFE grant: {exc}.") from None
        if valid:
            self.line("Token", self.style.SUCCESS("valid (the Launcher accepted it just now)"))
            return
        self.line("Token", self.style.ERROR(
            f"DEAD since {_when(grant.invalidated_at)}: the Launcher refused it (it "
            f"restarted, or the app was revoked or removed); {hint}"))
        raise CommandError(f"The SAFE grant is dead: {hint}.")

    def _describe(self, grant: SafeGrant, app: SafeApp, permissions: tuple[str, ...]) -> None:
        if (grant.app_name, grant.app_version) != (app.name, app.version):
            self.line("Authorized as", f"{grant.app_name} {grant.app_version} (the settings "
                                       "changed since; the data stays the app's)")
        self.line("Requested", listed_permissions(grant.permissions_requested))
        self.line("Granted", listed_permissions(grant.permissions_granted))
        if list(grant.permissions_requested) != list(permissions):
            self.stdout.write(f"{'':<14} (the settings now ask for "
                              f"{listed_permissions(permissions)}: "
                              f"run `{AUTHORIZE_COMMAND}` to ask again)")
        self.line("Authorized at", _when(grant.authorized_at))
        self.line("Last checked", _when(grant.last_checked_at))
