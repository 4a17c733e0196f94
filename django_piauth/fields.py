"""A model field that keeps its text encrypted in the database (see :mod:`.crypto`)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models

from .crypto import UndecryptableValue, decrypt, encrypt

logger = logging.getLogger("django_piauth")


class EncryptedTextField(models.TextField):
    """Plain text in Python, Fernet ciphertext in the database.

    A stored value no configured key opens reads as ``None`` (and is logged), so a lost
    key means "sign in again", not a crash. Lookups on the value are meaningless.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        try:
            return decrypt(value)
        except UndecryptableValue:
            logger.warning("%s.%s: a stored value cannot be decrypted with the configured "
                           "keys", self.model.__name__, self.name)
            return None

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, Ciphertext):
            return str(value)
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


class Ciphertext(str):
    """A value that is already encrypted (``piauth_reencrypt``): stored as it is."""

    __slots__ = ()
