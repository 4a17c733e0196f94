"""Django authentication backends: from an upstream-verified identity to a ``User``.

The DRF classes and the sign-in views delegate here, so the uid -> User mapping
lives in one place. Override the hook methods (``verify_identity``, ``create_user``,
``update_user``) to change what happens; the rest (the uid from upstream and nowhere
else, one User and Pioneer per uid) is not meant to be overridden.
"""

from __future__ import annotations

import logging
import secrets
from contextvars import ContextVar
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from asgiref.sync import sync_to_async
from django.apps import apps
from django.contrib.auth import get_backends, get_user_model
from django.contrib.auth.backends import BaseBackend
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, OperationalError, router, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import checks  # noqa: F401  (registers piauth.E003 even when the app is not installed)
from .conf import on_reload, piauth_settings
from .exceptions import IdentityRejected, InvalidCredentials, InvalidToken, UserInactive
from .linked import linked_pioneer, linked_user
from .providers.peerid import PeerIDIdentity, PeerIDTokens, get_peerid_client
from .providers.pi import PiIdentity
from .signals import pioneer_authenticated, pioneer_created
from .sqlite_busy import is_locked, retry_when_locked
from .usernames import free_username
from .verification import (
    averify_pi_token,
    averify_pi_token_again,
    verify_pi_token,
    verify_pi_token_again,
)

if TYPE_CHECKING:
    # _User is django-stubs' name for "the AUTH_USER_MODEL class" (its plugin resolves it
    # to the configured model; it does not exist at run time).
    from django.contrib.auth.models import _User
    from django.db.models import Field

    from .models import PeerIDCredential, Pioneer

logger = logging.getLogger("django_piauth")

#: How often a new Pioneer is retried when its chosen username was taken meanwhile.
_USERNAME_ATTEMPTS = 8

#: The username chosen for the new Pioneer being created, before its transaction began.
_chosen_username: ContextVar[str | None] = ContextVar("piauth_chosen_username", default=None)


def _stored_username(identity: Any) -> str:
    """The upstream username as ``Pioneer.username`` can hold it: cut to the column's
    length (upstream sets no limit; PostgreSQL refuses a longer value with an error)."""
    from .models import Pioneer

    return (identity.username or "")[:Pioneer._meta.get_field("username").max_length]


class LinkedAccountBackend(BaseBackend):
    """What every provider's backend shares: linked Pioneers and ``get_user``."""

    provider: str = ""

    def __init__(self) -> None:
        if not apps.is_installed("django_piauth"):
            raise ImproperlyConfigured(
                f"{type(self).__name__} is in AUTHENTICATION_BACKENDS but 'django_piauth' "
                "is not in INSTALLED_APPS."
            )

    # Django's backend API ---------------------------------------------------------

    def get_user(self, user_id: Any) -> _User | None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get(pk=user_id)
        except user_model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None

    def user_can_authenticate(self, user: _User) -> bool:
        return getattr(user, "is_active", True)

    # Hooks ------------------------------------------------------------------------

    def verify_identity(self, identity: Any) -> bool:
        """Return False to refuse an identity upstream vouched for. Default: accept."""
        return True

    def username_for(self, identity: Any) -> str:
        """The Django username a new Pioneer should get, before making it unique."""
        return identity.username or f"{self.provider}-{identity.uid[:12]}"

    def create_user(self, identity: Any) -> _User:
        """Create the ``User`` of a new Pioneer: a free username, an unusable password."""
        user_model = get_user_model()
        username_field = user_model.USERNAME_FIELD
        user = user_model(**{username_field: self._free_username(identity)})
        user.set_unusable_password()
        user.save()
        return user

    def update_user(self, user: _User, identity: Any) -> _User:
        """Called when upstream has just vouched for an existing Pioneer's token (not for
        a token whose verdict came from the cache). Default: change nothing."""
        return user

    # Linking ------------------------------------------------------------------------

    def _free_username(self, identity: Any) -> str:
        """The username chosen for the Pioneer being created (see ``_create_pioneer``), or
        one found now for a ``create_user`` called on its own."""
        chosen = _chosen_username.get()
        return chosen if chosen is not None else self._choose_username(identity)

    def _choose_username(self, identity: Any, *, retrying: bool = False) -> str:
        """A free username for ``identity``; on a retry (the chosen one was taken
        meanwhile) a random suffix, so that many concurrent new Pioneers with one name do
        not keep picking the same next one."""
        user_model = get_user_model()
        field_name = user_model.USERNAME_FIELD
        # USERNAME_FIELD names a field of the user model, never a reverse relation.
        username_field = cast("Field[Any, Any]", user_model._meta.get_field(field_name))
        max_length = username_field.max_length or 150
        base = self.username_for(identity)[:max_length]
        if retrying:
            ending = f"-{secrets.token_hex(3)}"
            return base[: max_length - len(ending)] + ending
        return free_username(user_model, field_name, base, max_length)

    def link_pioneer(self, request: HttpRequest | None, identity: Any) -> Pioneer:
        """The Pioneer for an identity upstream has just vouched for: found and brought up
        to date (username, scopes, ``last_verified_at``), or created (exactly once)."""
        pioneer = linked_pioneer(self.provider, identity.uid)
        if pioneer is None:
            pioneer, created = self._create_pioneer(identity)
            if created:
                pioneer_created.send(
                    sender=type(self), pioneer=pioneer, identity=identity, request=request
                )
                return pioneer
        self._refresh_pioneer(pioneer, identity)
        return pioneer

    def _create_pioneer(self, identity: Any) -> tuple[Pioneer, bool]:
        from .models import Pioneer

        def create() -> Pioneer:
            with transaction.atomic(using=using):
                user = self.create_user(identity)
                return Pioneer.objects.create(
                    user=user,
                    provider=self.provider,
                    uid=identity.uid,
                    username=_stored_username(identity),
                    scopes=list(getattr(identity, "scopes", ())),
                    last_verified_at=timezone.now(),
                )

        using = router.db_for_write(Pioneer)
        for attempt in range(_USERNAME_ATTEMPTS):
            # The name is looked for before the transaction begins: in SQLite's IMMEDIATE
            # mode a transaction holds the database's write lock from its start, and every
            # other first sign-in would wait for this search too. A name taken meanwhile
            # is an IntegrityError like any other, and is chosen again.
            chosen = _chosen_username.set(self._choose_username(identity, retrying=attempt > 0))
            try:
                # SQLite's "database is locked": the transaction runs again, or DatabaseBusy.
                pioneer = retry_when_locked(create, using=using)
            except IntegrityError:
                # Either another request linked this uid first (use its Pioneer), or
                # the username we chose was taken meanwhile (choose again).
                existing = (
                    Pioneer.objects.select_related("user")
                    .filter(provider=self.provider, uid=identity.uid)
                    .first()
                )
                if existing is not None:
                    return existing, False
                continue
            finally:
                _chosen_username.reset(chosen)
            logger.info("created %s Pioneer uid %s", self.provider, identity.uid)
            return pioneer, True
        raise IntegrityError(f"could not find a free username for {self.provider} uid")

    def _refresh_pioneer(self, pioneer: Pioneer, identity: Any) -> None:
        now = timezone.now()
        changes: dict[str, Any] = {}
        interval = timedelta(seconds=piauth_settings.LAST_VERIFIED_INTERVAL)
        if pioneer.last_verified_at is None or now - pioneer.last_verified_at >= interval:
            changes["last_verified_at"] = now
        username = _stored_username(identity)
        if username and username != pioneer.username:
            changes["username"] = username
        scopes = list(getattr(identity, "scopes", ()))
        if scopes != pioneer.scopes:
            changes["scopes"] = scopes
        if changes:
            using = router.db_for_write(type(pioneer))
            try:
                type(pioneer).objects.using(using).filter(pk=pioneer.pk).update(**changes)
            except OperationalError as exc:
                if not is_locked(exc, using):
                    raise
                # Bookkeeping: the next answer from upstream brings it up to date again.
                # Refusing the sign-in for it would turn a busy moment into an outage.
                logger.warning("%s Pioneer uid %s not brought up to date: the database is "
                               "locked (SQLite)", self.provider, pioneer.uid)
                changes = {}
            for field_name, value in changes.items():
                setattr(pioneer, field_name, value)
        pioneer.user = self.update_user(pioneer.user, identity)

    def sign_in(self, request: HttpRequest | None, identity: Any) -> tuple[_User, Pioneer]:
        """Link an identity upstream has just vouched for and return its user (and
        Pioneer), or raise ``InvalidToken`` subclasses."""
        if not self.verify_identity(identity):
            raise IdentityRejected("the identity was refused by verify_identity")
        pioneer = self.link_pioneer(request, identity)
        user = pioneer.user
        if not self.user_can_authenticate(user):
            raise UserInactive("the linked user is inactive")
        pioneer_authenticated.send(
            sender=type(self), pioneer=pioneer, identity=identity, request=request
        )
        return user, pioneer

    def sign_in_cached(self, request: HttpRequest | None,
                       identity: Any) -> _User | None:
        """The user of an identity verified earlier (from the cache): one query, no write.

        The user is read on every request, so deactivating it takes effect at once.
        ``None`` when nobody is linked to the identity any more (the user or its Pioneer
        was deleted): deleting is erasure, not a ban, so the person may come back, but
        only on a fresh word from upstream, never on the cached one.
        """
        if not self.verify_identity(identity):
            raise IdentityRejected("the identity was refused by verify_identity")
        user = linked_user(self.provider, identity.uid)
        if user is None:
            return None
        if not self.user_can_authenticate(user):
            raise UserInactive("the linked user is inactive")
        return user


class PiBackend(LinkedAccountBackend):
    """``authenticate(request, pi_access_token=...)``: the user ``/v2/me`` vouches for.

    Returns ``None`` for a rejected token or an inactive user, and for calls without
    ``pi_access_token`` (so it sits beside ``ModelBackend``). Raises
    ``UpstreamUnavailable`` when the Pi Platform cannot say: an outage is not a "no".
    """

    provider = "pi"

    # sensitive_variables: an unexpected error must not put the token in Django's error
    # reports (the frames below a decorated one are covered by its names).

    def verify_identity(self, identity: PiIdentity) -> bool:
        """Refuse identities missing a scope listed in ``PIAUTH['PI_REQUIRED_SCOPES']``."""
        required = piauth_settings.PI_REQUIRED_SCOPES
        return not required or set(required) <= set(identity.scopes)

    @sensitive_variables("pi_access_token")
    def authenticate(self, request: HttpRequest | None, pi_access_token: str | None = None,
                     **kwargs: Any) -> _User | None:
        if pi_access_token is None:
            return None
        try:
            user, _identity = self.authenticate_token(request, pi_access_token)
        except InvalidToken as exc:
            logger.info("Pi sign-in refused: %s", exc)
            return None
        return user

    @sensitive_variables("token")
    def authenticate_token(self, request: HttpRequest | None,
                           token: str) -> tuple[_User, PiIdentity]:
        """Verify ``token`` upstream and return (user, identity).

        A verdict some cache held already whose identity is linked to nobody (the user
        was deleted) is forgotten and the token verified again: only that answer may
        create the account anew.
        Raises ``InvalidToken`` (and subclasses) or ``UpstreamUnavailable``.
        """
        verification = verify_pi_token(token)
        if not verification.from_upstream:
            user = self.sign_in_cached(request, verification.identity)
            if user is not None:
                return user, verification.identity
            if not verification.fresh:
                verification = verify_pi_token_again(token)
        user, _pioneer = self.sign_in(request, verification.identity)
        return user, verification.identity

    @sensitive_variables("pi_access_token")
    async def aauthenticate(self, request: HttpRequest | None,
                            pi_access_token: str | None = None,
                            **kwargs: Any) -> _User | None:
        if pi_access_token is None:
            return None
        try:
            user, _identity = await self.aauthenticate_token(request, pi_access_token)
        except InvalidToken as exc:
            logger.info("Pi sign-in refused: %s", exc)
            return None
        return user

    @sensitive_variables("token")
    async def aauthenticate_token(self, request: HttpRequest | None,
                                  token: str) -> tuple[_User, PiIdentity]:
        """:meth:`authenticate_token` for async views: the event loop never waits on
        upstream or the database."""
        verification = await averify_pi_token(token)
        if not verification.from_upstream:
            user = await sync_to_async(self.sign_in_cached)(request, verification.identity)
            if user is not None:
                return user, verification.identity
            if not verification.fresh:
                verification = await averify_pi_token_again(token)
        user, _pioneer = await sync_to_async(self.sign_in)(request, verification.identity)
        return user, verification.identity


_configured: dict[type, tuple[Any, str | None]] = {}

BackendT = TypeVar("BackendT", bound=LinkedAccountBackend)


def configured_backend(backend_class: type[BackendT]) -> tuple[BackendT, str | None]:
    """The instance of ``backend_class`` (or a subclass) in ``AUTHENTICATION_BACKENDS``,
    and its dotted path; a default instance and ``None`` when none is listed."""
    found = _configured.get(backend_class)
    if found is None:
        from django.conf import settings

        found = (None, None)
        for path, backend in zip(settings.AUTHENTICATION_BACKENDS, get_backends(), strict=True):
            if isinstance(backend, backend_class):
                found = (backend, path)
                break
        if found[0] is None:
            found = (backend_class(), None)
        _configured[backend_class] = found
    return found


on_reload(_configured.clear)


class PeerIDBackend(LinkedAccountBackend):
    """PeerID sign-in: ``authenticate(request, peerid_login=..., peerid_password=...)``
    (``peerid_mobile=...`` beside it, or alone if ``PEERID_ALLOW_MOBILE_SIGN_IN``) and
    ``authenticate(request, peerid_code=...)``.

    Returns ``None`` for refused credentials, a code PeerID will not exchange, a token
    issued for another app, or an inactive user; raises ``UpstreamUnavailable`` when
    PeerID cannot say. The tokens are kept, encrypted, in the Pioneer's
    ``PeerIDCredential``; ``login()`` then marks the session as a PeerID session.
    """

    provider = "peerid"

    @sensitive_variables("peerid_password", "peerid_mobile", "peerid_code")
    def authenticate(self, request: HttpRequest | None, peerid_login: str | None = None,
                     peerid_password: str | None = None, peerid_mobile: str | None = None,
                     peerid_code: str | None = None, **kwargs: Any) -> _User | None:
        try:
            if peerid_code is not None:
                user, _credential = self.sign_in_with_code(request, peerid_code)
            elif peerid_login is not None and (peerid_password or peerid_mobile):
                user, _credential = self.sign_in_with_password(
                    request, peerid_login, password=peerid_password, mobile=peerid_mobile)
            else:
                return None
        except InvalidToken as exc:
            logger.info("PeerID sign-in refused: %s", exc)
            return None
        return user

    @staticmethod
    def secrets_suffice(password: str | None, mobile: str | None) -> bool:
        """Whether a login may be sent to PeerID with these: a password (a mobile number
        beside it is fine), or a mobile number alone only when
        ``PIAUTH['PEERID_ALLOW_MOBILE_SIGN_IN']`` is on. PeerID accepts either, but a
        phone number is no secret: whoever knows it could sign in as its owner."""
        if password:
            return True
        return bool(mobile) and piauth_settings.PEERID_ALLOW_MOBILE_SIGN_IN

    @sensitive_variables()  # every frame below too: PeerID's client puts them in a body
    def sign_in_with_password(self, request: HttpRequest | None, login: str, *,
                              password: str | None = None, mobile: str | None = None,
                              ) -> tuple[_User, PeerIDCredential]:
        """(user, credential) for a login with password and/or mobile; see ``authenticate``.

        Without a password (and mobile sign-in not allowed) it raises
        ``InvalidCredentials`` without asking PeerID.
        """
        if not self.secrets_suffice(password, mobile):
            raise InvalidCredentials("a password is required to sign in with PeerID")
        tokens = get_peerid_client().password_grant(login, password=password, mobile=mobile)
        return self.sign_in_with_tokens(request, tokens, login=login)

    @sensitive_variables()
    def sign_in_with_code(self, request: HttpRequest | None,
                          code: str) -> tuple[_User, PeerIDCredential]:
        """(user, credential) for an authorization code, exchanged once."""
        return self.sign_in_with_tokens(request, get_peerid_client().exchange_code(code))

    def sign_in_with_tokens(self, request: HttpRequest | None, tokens: PeerIDTokens, *,
                            login: str | None = None) -> tuple[_User, PeerIDCredential]:
        from .models import PeerIDCredential
        from .peerid import TOKEN_FIELDS, store_tokens

        identity = PeerIDIdentity.from_tokens(tokens, login)
        user, pioneer = self.sign_in(request, identity)
        credential = PeerIDCredential.objects.filter(pioneer=pioneer).first()
        if credential is None:
            credential = PeerIDCredential(pioneer=pioneer)
        store_tokens(credential, tokens)
        # Only the token fields of an existing row: a refresh's claim on it is kept.
        try:
            with transaction.atomic():  # a savepoint: the caller's transaction survives
                credential.save(update_fields=TOKEN_FIELDS if credential.pk else None)
        except IntegrityError:  # a concurrent sign-in of the same Pioneer saved first
            credential.pk = PeerIDCredential.objects.get(pioneer=pioneer).pk
            credential.save(update_fields=TOKEN_FIELDS)
        # Read by the user_logged_in receiver, which marks the session as PeerID's.
        user.piauth_peerid_credential_pk = credential.pk  # type: ignore[attr-defined]
        return user, credential
