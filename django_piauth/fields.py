"""A model field that keeps its text encrypted in the database (see :mod:`.crypto`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import models

from .crypto import UndecryptableValue, decrypt, encrypt

logger = logging.getLogger("django_piauth")

if TYPE_CHECKING:
    from django.db.models.expressions import Combinable

    # django-stubs makes fields generic over the types set and read (Django's classes are
    # not subscriptable at run time). Read as str, as a TextField is: the None of a value
    # no configured key opens (logged) is the "sign in again" case, which the callers meet
    # as a missing token (is_usable(), an upstream's refusal) and end the session on.
    _TextField = models.TextField[str | Combinable, str]
else:
    _TextField = models.TextField


class EncryptedTextField(_TextField):
    """Plain text in Python, Fernet ciphertext in the database and in ``dumpdata``.

    A stored value no configured key opens reads as ``None`` (and is logged), so a lost
    key means "sign in again", not a crash. Lookups on the value are meaningless.
    ``dumpdata`` writes ciphertext (under the newest key) and ``loaddata`` stores it as
    it is, so a dump loads only where a key that opens it is configured.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        try:
            return decrypt(value)
        except UndecryptableValue:
            logger.warning("%s.%s: a stored value cannot be decrypted with the configured "
                           "keys", self.model.__name__, self.name)
            return None

    def value_to_string(self, obj: Any) -> Any:
        """What serializers (``dumpdata``) write: ciphertext, never the clear value."""
        value = self.value_from_object(obj)
        if value is None or value == "" or isinstance(value, Ciphertext):
            return value
        return encrypt(value)

    def to_python(self, value: Any) -> Any:
        """What deserializers (``loaddata``) and ``full_clean`` read: a value a configured
        key opens is ciphertext (a dump's), kept as it is rather than encrypted twice;
        anything else is clear text. Fernet tokens are authenticated, so clear text is
        never mistaken for ciphertext (and stored unencrypted)."""
        value = super().to_python(value)
        if not value or isinstance(value, Ciphertext):
            return value
        try:
            decrypt(value)
        except UndecryptableValue:
            return value
        return Ciphertext(value)

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, Ciphertext):
            return str(value)
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


class Ciphertext(str):
    """A value that is already encrypted (``piauth_reencrypt``, ``loaddata``): stored as
    it is."""

    __slots__ = ()
