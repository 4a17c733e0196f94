"""``manage.py piauth_safe_authorize``: ask the SAFE Launcher to authorize this project.

Sends ``PIAUTH["SAFE_APP"]`` and ``PIAUTH["SAFE_PERMISSIONS"]`` (checked first: nothing is
sent when they are wrong), waits up to ``SAFE_AUTHORIZE_TIMEOUT`` seconds for the person at
the Launcher to allow or deny, and stores the token encrypted. Denied, refused or not
answered: nothing is stored and the command exits non-zero. A stored grant that the
Launcher still accepts, with the configured permissions, is kept unless ``--force``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...conf import piauth_settings
from ...exceptions import SafeAuthorizationDenied, UpstreamError, UpstreamUnavailable
from ...safe import (
    authorize_and_store,
    check_grant,
    configured_app,
    configured_permissions,
    get_grant,
    identity_change_message,
    launcher_url,
    listed_permissions,
    previous_identity,
)


class Command(BaseCommand):
    help = ("Ask the SAFE Launcher to authorize this project (PIAUTH['SAFE_APP']) with "
            "PIAUTH['SAFE_PERMISSIONS']; wait for the person to allow or deny; store the "
            "token encrypted.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force", action="store_true",
            help="Ask again even when the stored grant is valid and has the configured "
                 "permissions.",
        )
        parser.add_argument(
            "--timeout", type=float, default=None,
            help="Seconds to wait for the person at the Launcher (default: "
                 "PIAUTH['SAFE_AUTHORIZE_TIMEOUT']).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        timeout = options["timeout"]
        if timeout is not None and not timeout > 0:
            raise CommandError("--timeout is a positive number of seconds.")
        try:
            app = configured_app()
            permissions = configured_permissions()
        except ImproperlyConfigured as exc:
            raise CommandError(f"{exc} Nothing was sent to the SAFE Launcher.") from None
        url = launcher_url()

        previous = previous_identity(app)
        if previous is not None:
            self.stderr.write(self.style.WARNING(
                f"Warning: {identity_change_message(app, previous)}"))

        grant = get_grant(app)
        if (not options["force"] and grant is not None and grant.is_valid and grant.token
                and list(grant.permissions_requested) == list(permissions)):
            try:
                still_valid = check_grant(grant)
            except (UpstreamUnavailable, UpstreamError) as exc:
                raise CommandError(f"{exc}. Nothing was changed.") from None
            if still_valid:
                self.stdout.write(self.style.SUCCESS(
                    f"Already authorized: {app} at {url}, permissions granted: "
                    f"{listed_permissions(grant.permissions_granted)} (the Launcher accepted "
                    "the stored token just now). Use --force to ask again."))
                return
            self.stdout.write("The stored token is dead (the Launcher restarted, or the app "
                              "was revoked or removed): asking again.")

        wait = timeout if timeout is not None else piauth_settings.SAFE_AUTHORIZE_TIMEOUT
        self.stdout.write(
            f"Asking the SAFE Launcher at {url} to authorize {app} with permissions "
            f"{listed_permissions(permissions)}.\n"
            f"Allow it at the Launcher; waiting up to {wait:g} s...")
        self.stdout.flush()
        try:
            grant = authorize_and_store(timeout=timeout)
        except SafeAuthorizationDenied as exc:
            raise CommandError(f"Denied: {exc}. Nothing was stored.") from None
        except (UpstreamError, UpstreamUnavailable) as exc:
            raise CommandError(f"{exc}. Nothing was stored.") from None

        self.stdout.write(self.style.SUCCESS(
            f"Authorized: {app} at {url}, permissions granted: "
            f"{listed_permissions(grant.permissions_granted)}. The token is stored encrypted."))
        missing = [p for p in permissions if p not in grant.permissions_granted]
        if missing:
            self.stderr.write(self.style.WARNING(
                f"Warning: the Launcher did not grant {listed_permissions(missing)}; calls "
                "that need them will fail."))
