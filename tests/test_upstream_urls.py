"""Upstream URLs cannot leave the configured upstream: no path given to a client, and no
redirect an upstream answers, takes a call (or its credential) to another host."""

import pytest
from django.test import Client

from django_piauth.exceptions import UpstreamUnavailable
from django_piauth.models import Pioneer
from django_piauth.providers.http import OffSiteURL, join_url
from django_piauth.providers.peerid import PeerIDClient
from django_piauth.providers.pi import PiPlatformClient
from django_piauth.providers.safe import SafeLauncherClient
from django_piauth.testing.base import FakeUpstreamBase
from django_piauth.testing.server import LoopbackServer

KEY = "server-api-key-never-elsewhere"


def recording_server():
    """A loopback server that records every call (and its Authorization scheme)."""
    fake = FakeUpstreamBase()
    with LoopbackServer(fake) as server:
        fake.url = server.url
        yield fake


attacker = pytest.fixture(recording_server, name="attacker")
upstream = pytest.fixture(recording_server, name="upstream")


def off_site_paths(attacker_url):
    host_port = attacker_url.removeprefix("http://")
    return [f"@{host_port}/steal", f".{host_port}/steal", f":{host_port.split(':')[1]}/x",
            f"//{host_port}/steal", f"\\\\{host_port}/steal", "steal", "", " /x",
            "/x\r\nHost: evil"]


def clients(base):
    return {
        "pi": lambda path: PiPlatformClient(base, server_api_key=KEY,
                                            timeout=(0.5, 0.5)).server_call("GET", path),
        "peerid": lambda path: PeerIDClient(base, client_id=42, client_secret=KEY,
                                            timeout=(0.5, 0.5)).call(path, KEY, {}),
        "safe": lambda path: SafeLauncherClient(base, timeout=(0.5, 0.5)).request(
            "GET", path, KEY),
    }


@pytest.mark.parametrize("name", ["pi", "peerid", "safe"])
def test_a_path_that_leaves_the_upstream_is_refused_before_any_call(name, upstream,
                                                                    attacker):
    call = clients(upstream.url)[name]
    for path in off_site_paths(attacker.url):
        with pytest.raises(OffSiteURL):
            call(path)
    assert attacker.calls == []
    assert upstream.calls == []


@pytest.mark.parametrize("base, path", [
    ("https://api.minepi.com", "/v2/me"),
    ("https://api.minepi.com/", "/v2/payments/abc/approve"),
    ("http://127.0.0.1:8100", "/auth?x=@evil.example"),
    ("https://host.example/prefix", "/api/v1/auth/token"),
])
def test_paths_on_the_upstream_are_joined(base, path):
    assert join_url(base, path) == base.rstrip("/") + path


@pytest.mark.parametrize("path", ["/../admin", "/./../admin", "/a/../../admin"])
def test_a_path_cannot_climb_out_of_the_base_path(path):
    with pytest.raises(OffSiteURL):
        join_url("https://host.example/prefix", path)


@pytest.mark.django_db
def test_a_redirect_is_never_followed_and_never_gets_the_credential(live_fake_pi, attacker,
                                                                    settings):
    settings.PIAUTH = {**settings.PIAUTH, "PI_SERVER_API_KEY": KEY}
    live_fake_pi.set_server_api_key(KEY)
    from django_piauth.providers.pi import get_pi_client

    for status in (301, 302, 307, 308):
        live_fake_pi.fail_with(status, {"error": "moved"}, count=2,
                               headers={"Location": f"{attacker.url}/v2/me"})
        response = Client().post("/auth/pi/login/", {"accessToken": "some-token"})
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        with pytest.raises(UpstreamUnavailable):
            get_pi_client().get_payment("abc")
    assert attacker.calls == []
    assert not Pioneer.objects.exists()
