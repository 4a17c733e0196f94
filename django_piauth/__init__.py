"""Sign people in to Django and DRF with Pi Network, Peerplays PeerID and SAFE Launcher."""

__version__ = "0.1.0"
