"""Signal receivers connected in ``PiAuthConfig.ready()``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in

from .drf import PI_UID_SESSION_KEY
from .peerid import SESSION_KEY


def mark_peerid_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A user signed in through PeerIDBackend: remember the credential in the session."""
    credential_pk = getattr(user, "piauth_peerid_credential_pk", None)
    session = getattr(request, "session", None)
    if session is None:
        return
    if credential_pk is not None:
        session[SESSION_KEY] = credential_pk
    else:
        session.pop(SESSION_KEY, None)  # signed in another way: not a PeerID session
    session.pop(PI_UID_SESSION_KEY, None)  # pi-login sets it again after its login()


def connect() -> None:
    user_logged_in.connect(mark_peerid_session, dispatch_uid="django_piauth.peerid_session")
