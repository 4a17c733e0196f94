"""``manage.py piauth_reencrypt``: every encrypted value re-encrypted under the newest key.

Run it after putting a new key first in ``PIAUTH["TOKEN_ENCRYPTION_KEYS"]``; once it
reports no undecryptable values, the old keys can be dropped.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from ...crypto import UndecryptableValue, reencrypt
from ...fields import Ciphertext, EncryptedTextField


class Command(BaseCommand):
    help = "Re-encrypt every stored PeerID and SAFE token under the newest encryption key."

    def handle(self, *args: Any, **options: Any) -> None:
        total = failed = 0
        for model in apps.get_app_config("django_piauth").get_models():
            names = [f.name for f in model._meta.concrete_fields
                     if isinstance(f, EncryptedTextField)]
            if not names:
                continue
            # Cast to a plain TextField: the ciphertext as stored, not decrypted.
            raw = {f"raw_{name}": Cast(name, TextField()) for name in names}
            rows = model._default_manager.annotate(**raw).values("pk", *raw)
            for row in rows.iterator():
                updates, row_failed = {}, False
                for name in names:
                    stored = row[f"raw_{name}"]
                    if not stored:
                        continue
                    try:
                        updates[name] = reencrypt(stored)
                    except UndecryptableValue:
                        row_failed = True
                        self.stderr.write(f"{model.__name__} {row['pk']}: {name} cannot be "
                                          "decrypted with any configured key; left as is.")
                if updates:
                    with transaction.atomic():
                        # update() on the raw column: the values are already ciphertext.
                        model._default_manager.filter(pk=row["pk"]).update(
                            **{name: Ciphertext(value) for name, value in updates.items()})
                    total += 1
                failed += row_failed
        self.stdout.write(f"Re-encrypted {total} row(s) under the newest key.")
        if failed:
            raise CommandError(f"{failed} row(s) hold values no configured key decrypts.")
