"""PeerID sessions: keeping a signed-in user's PeerID credential alive.

A session signed in with PeerID holds the credential's pk under :data:`SESSION_KEY`.
Before a view runs, :func:`fresh_session_credential` makes sure that credential is
usable: when it has expired (less ``PEERID_REFRESH_MARGIN``) or a call answered 401, it
is refreshed, exactly once however many requests, threads or processes notice at once:
an in-process lock per credential, then a claim on its row (:mod:`.refresh_claim`: a
short committed write, no database lock held while PeerID answers), then a re-read
(whoever comes second finds fresh tokens and uses them). PeerID rotates both tokens on
refresh, so a second refresh with the old refresh token would sign the user out; the
new tokens, or the revocation of a dead refresh token, are therefore committed at once,
whatever the request's transaction does next (:mod:`.durable`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from weakref import WeakValueDictionary

from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .conf import piauth_settings
from .durable import CommittedWrites
from .exceptions import (
    AccessTokenRejected,
    PeerIDSessionEnded,
    RefreshTokenDead,
    UpstreamUnavailable,
)
from .models import PeerIDCredential
from .providers.peerid import SERVICE, PeerIDTokens, get_peerid_client
from .refresh_claim import RELEASED, claim_lifetime, held_by, new_holder, release, try_claim
from .signals import peerid_refresh_failed, peerid_refreshed

logger = logging.getLogger("django_piauth")
T = TypeVar("T")

#: The session key that marks a session signed in with PeerID.
SESSION_KEY = "_piauth_peerid_credential"


#: The fields :func:`store_tokens` sets.
TOKEN_FIELDS = ("access_token", "refresh_token", "expires_at", "scope", "needs_refresh",
                "revoked_at")


def store_tokens(credential: PeerIDCredential, tokens: PeerIDTokens) -> None:
    """Put fresh tokens on ``credential`` (unsaved); clears any revocation or 401 mark."""
    credential.access_token = tokens.access_token
    credential.refresh_token = tokens.refresh_token
    credential.expires_at = tokens.expires_at
    credential.scope = list(tokens.scope)
    credential.needs_refresh = False
    credential.revoked_at = None


def is_due(credential: PeerIDCredential, rejected_access_token: str | None = None) -> bool:
    """Whether ``credential`` must be refreshed before its access token is used."""
    if credential.needs_refresh:
        return True
    if rejected_access_token is not None and credential.access_token == rejected_access_token:
        return True
    if credential.expires_at is None:
        return False
    margin = timedelta(seconds=piauth_settings.PEERID_REFRESH_MARGIN)
    return credential.expires_at - margin <= timezone.now()


def is_usable(credential: PeerIDCredential) -> bool:
    return credential.revoked_at is None and bool(credential.access_token)


_refresh_locks: WeakValueDictionary[int, threading.Lock] = WeakValueDictionary()
_refresh_locks_guard = threading.Lock()

#: Pauses (seconds) between looks at a credential another process is refreshing.
_FIRST_PAUSE, _LONGEST_PAUSE = 0.02, 0.25


def _lock_for(credential_pk: int) -> threading.Lock:
    with _refresh_locks_guard:
        lock = _refresh_locks.get(credential_pk)
        if lock is None:
            lock = threading.Lock()
            _refresh_locks[credential_pk] = lock
        return lock


def revoke(credential: PeerIDCredential, *, claimed_by: str | None = None) -> bool:
    """Forget the tokens: every session of this credential ends at its next request.

    With ``claimed_by``, only while that refresh claim holds. Any claim is released (a
    refresh under way then stores nothing). Whether the row was revoked.
    """
    rows = (PeerIDCredential.objects.filter(pk=credential.pk) if claimed_by is None
            else held_by(credential.pk, claimed_by))
    now = timezone.now()
    revoked = rows.update(access_token="", refresh_token="", needs_refresh=False,
                          revoked_at=now, **RELEASED)
    credential.access_token = credential.refresh_token = ""
    credential.revoked_at = now
    return revoked == 1


def _read(credential_pk: int) -> PeerIDCredential | None:
    return PeerIDCredential.objects.select_related("pioneer").filter(pk=credential_pk).first()


@sensitive_variables()  # this frame and every one below it: the refresh token, the secret
def refresh(credential_pk: int, *, rejected_access_token: str | None = None,
            request: HttpRequest | None = None) -> PeerIDCredential:
    """The credential with usable tokens, refreshed if (still) due; one refresh at a time.

    Raises ``PeerIDSessionEnded`` when it is gone or PeerID refuses the refresh token
    (the credential is then revoked), ``UpstreamUnavailable`` when PeerID cannot say
    (the credential is left as it was). What it writes is committed at once, whatever
    the caller's transaction does next (see :mod:`.durable` for the exceptions).
    """
    lock = _lock_for(credential_pk)  # the first line: one refresher per process
    if not lock.acquire(timeout=claim_lifetime()):
        raise UpstreamUnavailable("another refresh of this PeerID credential is still "
                                  "running", service=SERVICE)
    try:
        with CommittedWrites(PeerIDCredential, credential_pk) as writes:
            credential, failure, refreshed = _refresh_claimed(
                credential_pk, rejected_access_token, writes)
    finally:
        lock.release()
    if failure is not None:
        peerid_refresh_failed.send(sender=PeerIDCredential, credential=credential,
                                   request=request, reason=str(failure))
        raise PeerIDSessionEnded("PeerID refused the refresh token") from failure
    if refreshed:
        peerid_refreshed.send(sender=PeerIDCredential, credential=credential,
                              request=request)
    return credential


def _claim_if_due(credential_pk: int, rejected_access_token: str | None,
                  writes: CommittedWrites, holder: str) -> tuple[PeerIDCredential, bool]:
    """(the credential, False) once it needs no refresh, or (it, True) claimed by
    ``holder`` while it still does. Waits, holding no database lock, while another
    process's claim holds; whoever comes second finds fresh tokens and uses them."""
    give_up = time.monotonic() + claim_lifetime() + _LONGEST_PAUSE
    pause = _FIRST_PAUSE
    claimed = False
    while True:
        with writes.using():
            credential = _read(credential_pk)
        usable = credential is not None and is_usable(credential)
        if claimed and (credential is None or not usable
                        or not is_due(credential, rejected_access_token)):
            with writes.using():
                release(credential_pk, holder)
        if credential is None or not usable:
            raise PeerIDSessionEnded("the PeerID credential is gone or revoked")
        if not is_due(credential, rejected_access_token):
            return credential, False  # refreshed by another request while we waited
        if claimed:
            return credential, True
        with writes.using():
            claimed = try_claim(credential_pk, holder)
        if claimed:
            continue  # read again under the claim: a refresh may have been stored since
        if time.monotonic() > give_up:
            raise UpstreamUnavailable("another refresh of this PeerID credential is still "
                                      "running", service=SERVICE)
        time.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)


def _refresh_claimed(credential_pk: int, rejected_access_token: str | None,
                     writes: CommittedWrites
                     ) -> tuple[PeerIDCredential, RefreshTokenDead | None, bool]:
    """(credential, the refusal if PeerID refused, whether it was refreshed here).

    Claim (a short committed write), call PeerID with no lock held, then store the
    tokens and release the claim in one write, if the claim still holds.
    """
    holder = new_holder()
    credential, claimed = _claim_if_due(credential_pk, rejected_access_token, writes, holder)
    if not claimed:
        return credential, None, False
    uid = credential.pioneer.uid
    try:
        tokens = get_peerid_client().refresh(credential.refresh_token)
        if str(tokens.user_id) != uid:
            raise RefreshTokenDead("the refreshed token belongs to another user")
    except RefreshTokenDead as exc:
        logger.warning("PeerID refused to refresh the credential of uid %s: %s", uid, exc)
        with writes.using():
            revoke(credential, claimed_by=holder)
        return credential, exc, False
    except BaseException:
        with writes.using():
            release(credential_pk, holder)
        raise
    store_tokens(credential, tokens)
    credential.last_refreshed_at = timezone.now()
    with writes.using():
        stored = held_by(credential_pk, holder).update(
            **{name: getattr(credential, name) for name in TOKEN_FIELDS},
            last_refreshed_at=credential.last_refreshed_at, **RELEASED)
    if not stored:  # taken over (the call outlived the claim) or revoked meanwhile
        logger.warning("the refresh of the PeerID credential of uid %s lost its claim; "
                       "its tokens are dropped", uid)
        raise UpstreamUnavailable("the PeerID refresh lost its claim", service=SERVICE)
    credential.refresh_claimed_by, credential.refresh_claimed_until = "", None
    logger.info("refreshed the PeerID credential of uid %s", uid)
    return credential, None, True


def fresh_session_credential(request: HttpRequest) -> PeerIDCredential | None:
    """The session's PeerID credential, refreshed when due; ``None`` for other sessions.

    A session without :data:`SESSION_KEY` costs nothing (no query). Raises
    ``PeerIDSessionEnded`` or ``UpstreamUnavailable`` (see :func:`refresh`).
    """
    credential_pk = request.session.get(SESSION_KEY)
    if credential_pk is None:
        return None
    user = getattr(request, "user", None)
    credential = (PeerIDCredential.objects.select_related("pioneer")
                  .filter(pk=credential_pk).first())
    if (credential is None or not is_usable(credential)
            or (user is not None and credential.pioneer.user_id != user.pk)):
        raise PeerIDSessionEnded("the session's PeerID credential is gone or revoked")
    if is_due(credential):
        credential = refresh(credential.pk, request=request)
    return credential


@sensitive_variables()  # the access token, here and in the calls below
def call_with_refresh(credential: PeerIDCredential,
                      call: Callable[[str], T], *, request: HttpRequest | None = None) -> T:
    """``call(access_token)``; on a 401, refresh once and retry once.

    For app code: ``call_with_refresh(cred, lambda token: client.operations(token, ops))``.
    A second 401 marks the credential for refresh and raises ``AccessTokenRejected``.
    """
    token = credential.access_token
    try:
        return call(token)
    except AccessTokenRejected:
        logger.info("PeerID answered 401 for uid %s: refreshing once",
                    credential.pioneer.uid)
    fresh = refresh(credential.pk, rejected_access_token=token, request=request)
    _copy_tokens(fresh, credential)
    try:
        return call(fresh.access_token)
    except AccessTokenRejected:
        with CommittedWrites(PeerIDCredential, credential.pk) as writes, writes.using():
            PeerIDCredential.objects.filter(pk=credential.pk).update(needs_refresh=True)
        raise


def _copy_tokens(source: PeerIDCredential, target: PeerIDCredential) -> None:
    for name in ("access_token", "refresh_token", "expires_at", "scope", "needs_refresh",
                 "last_refreshed_at", "revoked_at"):
        setattr(target, name, getattr(source, name))


def peerid_operations(credential: PeerIDCredential, operations: list[dict[str, Any]], *,
                      request: HttpRequest | None = None) -> Any:
    """``POST /api/v1/app/operations`` with the user's token, refreshing once on a 401."""
    client = get_peerid_client()
    return call_with_refresh(credential, lambda token: client.operations(token, operations),
                             request=request)
