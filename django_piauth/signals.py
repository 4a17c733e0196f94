"""Signals sent by django-piauth. Receivers get ``sender`` (the backend class),
``pioneer``, ``identity`` (the verified identity) and ``request`` (may be None)."""

from django.dispatch import Signal

#: A new Pioneer (and its User) was created, after the transaction committed.
pioneer_created = Signal()

#: Upstream has just vouched for a Pioneer's token and it signed in (not sent for
#: requests whose token verdict came from the cache).
pioneer_authenticated = Signal()

#: A PeerID credential was refreshed (``credential``, ``request``), after the commit.
peerid_refreshed = Signal()

#: PeerID refused a credential's refresh token; the credential is revoked and its
#: sessions end (``credential``, ``request``, ``reason``).
peerid_refresh_failed = Signal()
