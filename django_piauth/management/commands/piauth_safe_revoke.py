"""``manage.py piauth_safe_revoke``: revoke the SAFE token at the Launcher
(``DELETE /auth``), then forget it.

The grant's row stays, without its token and marked not valid: a record of what was
granted, and of the app id and vendor used at that Launcher (see piauth.W042). When the
Launcher cannot be reached the token is kept (it may still work there) and the command
exits non-zero, unless ``--forget``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...exceptions import UpstreamError, UpstreamUnavailable
from ...safe import configured_app, get_grant, launcher_url, revoke


class Command(BaseCommand):
    help = ("Revoke the SAFE token at the SAFE Launcher (DELETE /auth), then forget it "
            "(the grant's row stays as a record).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--forget", action="store_true",
            help="Forget the token even when the Launcher cannot be reached.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            app = configured_app()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        url = launcher_url()
        grant = get_grant(app)
        if grant is None:
            self.stdout.write(f"Nothing to revoke: {app} has no SAFE grant at {url}.")
            return
        try:
            outcome = revoke(grant, forget_if_unreachable=options["forget"])
        except (UpstreamUnavailable, UpstreamError) as exc:
            raise CommandError(
                f"{exc}. The token is kept (it may still work at the Launcher): run this "
                "again when the Launcher answers, or with --forget.") from None
        messages = {
            "revoked": "Revoked at the SAFE Launcher",
            "already dead": "The SAFE Launcher no longer accepted the token (nothing to "
                            "revoke there)",
            "forgotten": "The SAFE Launcher could not be reached; with --forget",
            "nothing stored": "No token was stored",
        }
        self.stdout.write(self.style.SUCCESS(
            f"{messages[outcome]}: the token of {app} at {url} is forgotten."))
