"""The fake SAFE Launcher on its own: what it answers, through ``handle``, ``responses``
and a loopback server."""

import base64
import json

import pytest
import requests
import responses

from django_piauth.testing import FakeSafeLauncher, LoopbackServer, serve_with_responses
from django_piauth.testing.safe import DEFAULT_APP, KNOWN_PERMISSIONS

APP = {"name": "Shop", "id": "com.example.shop", "version": "1.0", "vendor": "Example"}


def authorize(fake, app=APP, permissions=("SAFE_DRIVE_ACCESS",), **extra):
    body = {"app": app, "permissions": list(permissions), **extra}
    return fake.handle("POST", "/auth", {"Content-Type": "application/json"},
                       json.dumps(body).encode())


def call(fake, method, path, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return fake.handle(method, path, headers, b"")


def body_of(result):
    return json.loads(result[2])


def test_approves_by_default_with_a_jwt_looking_token():
    fake = FakeSafeLauncher()
    status, headers, body = authorize(fake, permissions=["SAFE_DRIVE_ACCESS", "LOW_LEVEL_API"])
    assert status == 200 and headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert answer["permissions"] == ["SAFE_DRIVE_ACCESS", "LOW_LEVEL_API"]
    header, payload, signature = answer["token"].split(".")
    padded = header + "=" * (-len(header) % 4)
    assert json.loads(base64.urlsafe_b64decode(padded))["alg"] == "HS256"
    assert payload and signature
    assert fake.token_valid(answer["token"])
    assert fake.live_tokens == 1
    [authorization] = fake.authorizations
    assert (authorization.app, authorization.outcome) == (APP, "approved")
    assert answer["token"] not in repr(authorization) + repr(fake) + repr(fake.calls)
    assert authorize(fake)[2] != body  # a new token each time


@pytest.mark.parametrize(
    ("request_body", "description"),
    [
        ({"permissions": []}, "Fields are missing"),
        ({"app": {k: v for k, v in APP.items() if k != "version"}, "permissions": []},
         "Fields are missing"),
        ({"app": {**APP, "vendor": ""}, "permissions": []}, "Fields are missing"),
        ({"app": {**APP, "name": "   "}, "permissions": []}, "Values cannot be empty"),
        ({"app": APP}, "Permission field is missing"),
        ({"app": APP, "permissions": ["SAFE_DRIVE_ACCESS", "NFS"]}, "Invalid permissions"),
        ({"app": APP, "permissions": "SAFE_DRIVE_ACCESS"}, "Invalid permissions"),
    ],
)
def test_validation_errors_as_the_launcher_gives_them(request_body, description):
    fake = FakeSafeLauncher()
    result = fake.handle("POST", "/auth", {}, json.dumps(request_body).encode())
    assert result[0] == 400
    assert body_of(result) == {"errorCode": 400, "description": description}
    assert fake.authorizations == [] and fake.live_tokens == 0


def test_a_body_that_is_not_json():
    result = FakeSafeLauncher().handle("POST", "/auth", {}, b"{nope")
    assert result[0] == 400 and body_of(result)["description"] == "Invalid request body"


def test_known_permissions_can_be_narrowed():
    fake = FakeSafeLauncher(known_permissions=["SAFE_DRIVE_ACCESS"])
    assert authorize(fake, permissions=["LOW_LEVEL_API"])[0] == 400
    assert KNOWN_PERMISSIONS == ("SAFE_DRIVE_ACCESS", "LOW_LEVEL_API")


def test_deny_then_approve():
    fake = FakeSafeLauncher()
    fake.deny()
    status, _headers, body = authorize(fake)
    assert (status, body) == (401, b"Unauthorised")
    assert authorize(fake)[0] == 200  # the next one is approved again
    fake.deny(count=2)
    assert [authorize(fake)[0] for _ in range(3)] == [401, 401, 200]
    fake.deny(count=None)
    assert [authorize(fake)[0] for _ in range(3)] == [401, 401, 401]
    fake.approve()
    assert authorize(fake)[0] == 200
    assert [a.outcome for a in fake.authorizations].count("denied") == 6
    with pytest.raises(ValueError):
        fake.deny(count=0)


def test_approve_fewer_permissions_than_asked():
    fake = FakeSafeLauncher()
    fake.approve(permissions=["LOW_LEVEL_API"])
    answer = body_of(authorize(fake, permissions=["SAFE_DRIVE_ACCESS", "LOW_LEVEL_API"]))
    assert answer["permissions"] == ["LOW_LEVEL_API"]


def test_slow_answer_waits_or_times_out():
    slept = []
    fake = FakeSafeLauncher(sleep=slept.append)
    fake.slow_answer(30)
    assert authorize(fake)[0] == 200
    assert slept == [30]
    assert authorize(fake)[0] == 200 and slept == [30]  # count=1 by default
    fake.slow_answer(30)
    with pytest.raises(TimeoutError):
        fake.handle("POST", "/auth", {}, json.dumps({"app": APP, "permissions": []}).encode(),
                    timeout=5)
    assert fake.calls[-1].status is None
    assert authorize(fake)[0] == 200  # the slow answer was used up


def test_get_and_delete_auth():
    fake = FakeSafeLauncher()
    token = body_of(authorize(fake))["token"]
    assert call(fake, "GET", "/auth", token)[0] == 200
    assert call(fake, "GET", "/auth")[0] == 401
    assert call(fake, "GET", "/auth", "not-a-jwt")[0] == 401
    assert call(fake, "GET", "/auth", "a.b.c")[0] == 401
    assert fake.handle("GET", "/auth", {"Authorization": token}, b"")[0] == 401  # no scheme
    assert call(fake, "DELETE", "/auth", token)[0] == 200
    assert call(fake, "GET", "/auth", token)[0] == 401
    assert call(fake, "DELETE", "/auth", token)[0] == 401
    assert not fake.token_valid(token)
    assert [c.auth_scheme for c in fake.calls[1:3]] == ["Bearer", None]


def test_restart_kills_every_token_and_remove_app_one_apps():
    fake = FakeSafeLauncher()
    shop = fake.issue_token(APP)
    other = fake.issue_token()  # DEFAULT_APP
    assert fake.calls == []
    fake.remove_app(APP["id"], APP["vendor"])
    assert not fake.token_valid(shop) and fake.token_valid(other)
    again = fake.issue_token(APP)
    fake.restart()
    assert fake.restarts == 1 and fake.live_tokens == 0
    assert not fake.token_valid(again) and not fake.token_valid(other)
    assert authorize(fake)[0] == 200  # a restarted Launcher authorizes again
    fake.revoke(fake.issue_token(DEFAULT_APP))
    assert fake.live_tokens == 1


def test_authorised_route_and_unknown_routes():
    fake = FakeSafeLauncher()
    token = fake.issue_token()
    listing = call(fake, "GET", "/nfs/directory/app/", token)
    assert listing[0] == 200
    assert body_of(listing)["files"] == [] and body_of(listing)["subDirectories"] == []
    assert call(fake, "GET", "/nfs/directory/app/", None)[0] == 401
    assert call(fake, "GET", "/dns", token)[0] == 404
    assert call(fake, "PUT", "/auth", token)[0] == 405


def test_failure_injection_applies():
    fake = FakeSafeLauncher()
    fake.fail_with(503, "down", path="/auth")
    assert authorize(fake)[0] == 503
    assert authorize(fake)[0] == 200


def test_served_through_responses():
    fake = FakeSafeLauncher()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        serve_with_responses(fake, rsps, "http://localhost:8100")
        answer = requests.post("http://localhost:8100/auth", timeout=5,
                               json={"app": APP, "permissions": []})
        assert answer.status_code == 200
        token = answer.json()["token"]
        assert requests.get("http://localhost:8100/auth", timeout=5,
                            headers={"Authorization": f"Bearer {token}"}).status_code == 200
        fake.slow_answer(10)
        with pytest.raises(requests.ReadTimeout):
            requests.post("http://localhost:8100/auth", timeout=(1, 2),
                          json={"app": APP, "permissions": []})


@pytest.mark.live
def test_served_on_loopback():
    fake = FakeSafeLauncher()
    with LoopbackServer(fake) as server:
        fake.url = server.url
        fake.deny()
        denied = requests.post(f"{server.url}/auth", timeout=5,
                               json={"app": APP, "permissions": ["SAFE_DRIVE_ACCESS"]})
        assert (denied.status_code, denied.text) == (401, "Unauthorised")
        bad = requests.post(f"{server.url}/auth", timeout=5, json={"app": APP})
        assert bad.json() == {"errorCode": 400, "description": "Permission field is missing"}
        fake.slow_answer(0.2)
        answer = requests.post(f"{server.url}/auth", timeout=5,
                               json={"app": APP, "permissions": ["SAFE_DRIVE_ACCESS"]})
        token = answer.json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert requests.get(f"{server.url}/auth", headers=bearer, timeout=5).status_code == 200
        fake.restart()
        assert requests.get(f"{server.url}/auth", headers=bearer, timeout=5).status_code == 401


def test_fixture_serves_at_the_configured_url(fake_safe, settings):
    assert fake_safe.url == "http://localhost:8100"
    assert requests.get("http://localhost:8100/auth", timeout=5).status_code == 401


@pytest.mark.live
def test_live_fixture_points_the_settings_at_it(live_fake_safe, settings):
    from django_piauth.conf import piauth_settings

    assert live_fake_safe.url == piauth_settings.SAFE_LAUNCHER_URL
    assert piauth_settings.PI_API_URL == "https://api.minepi.example"  # other keys kept
    assert requests.get(f"{live_fake_safe.url}/auth", timeout=5).status_code == 401


def test_works_beside_the_fake_pi_platform(fake_pi, fake_safe):
    assert requests.get("http://localhost:8100/auth", timeout=5).status_code == 401
    token = fake_pi.issue_token(username="alice")
    me = requests.get(f"{fake_pi.url}/v2/me", timeout=5,
                      headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert fake_safe.call_count("/auth") == 1 and fake_pi.call_count("/v2/me") == 1
