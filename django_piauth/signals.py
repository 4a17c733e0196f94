"""Signals sent by django-piauth. Receivers of the sign-in signals get ``sender`` (the
backend class), ``pioneer``, ``identity`` (the verified identity) and ``request`` (may be
None); those of the payment signals ``sender`` (``PiPayment``), ``payment`` and
``request`` (None from the settle command)."""

from django.dispatch import Signal

#: A new Pioneer (and its User) was created: sent once its creation's own atomic block
#: committed (inside an enclosing transaction, such as ATOMIC_REQUESTS, before that one).
pioneer_created = Signal()

#: Upstream has just vouched for a Pioneer's token and it signed in (not sent for
#: requests whose token verdict came from the cache).
pioneer_authenticated = Signal()

#: A PeerID credential was refreshed (``credential``, ``request``), after the commit.
peerid_refreshed = Signal()

#: PeerID refused a credential's refresh token; the credential is revoked and its
#: sessions end (``credential``, ``request``, ``reason``).
peerid_refresh_failed = Signal()

#: A Pi payment was approved at the platform, after the commit; once per payment.
payment_approved = Signal()

#: A Pi payment was completed at the platform (its delivery already attempted), after
#: the commit; once per payment.
payment_completed = Signal()

#: A Pi payment was cancelled (by the Pioneer, the app or a refusing handler), after
#: the commit; once per payment.
payment_cancelled = Signal()
