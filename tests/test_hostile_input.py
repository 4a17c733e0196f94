"""Hostile client input on every endpoint: odd headers, bodies, content types and query
strings always get a 4xx (or the documented 2xx/3xx), never a 500."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from django_piauth.models import Pioneer

pytestmark = pytest.mark.django_db

POSTS = ["/auth/pi/login/", "/auth/peerid/login/", "/auth/logout/"]
PASSWORD = "correct horse battery"

AUTHORIZATIONS = [
    "Bearer", "Bearer ", "Bearer    ", "Bearer a b", "Bearer\ttoken", "bearer token",
    "Basic dXNlcjpwYXNz", "Token abc", "Key abc", "Negotiate", "\x00", "Bearer \x00abc",
    "Bearer tökén", "Bearer \xff\xfe", "Bearer " + " " * 5000 + "token", "Bearer " + "x" * 100_000,
    "x" * 100_000, "Bearer " + "é" * 3000, "Bearer token\r\nX-Evil: 1", "  Bearer token",
]

BODIES: list[tuple[bytes | str, str]] = [
    (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'"a string"', "application/json"),
    (b"null", "application/json"),
    (b"[" * 200_000, "application/json"),
    (b'{"a": ' * 5000 + b"1" + b"}" * 5000, "application/json"),
    (b'{"accessToken": ' + b"[" * 900 + b"]" * 900 + b"}", "application/json"),
    (b'{"accessToken": {"x": 1}, "login": [1], "password": 5, "next": {}}', "application/json"),
    (b"\xff\xfe\x00{", "application/json"),
    (b'{"accessToken": "\\ud800"}', "application/json"),
    (b'{"accessToken": "a\\u0000b", "login": "\\u0000", "password": "\\u0000"}',
     "application/json"),
    (json.dumps({"accessToken": "x" * 2_000_000}).encode(), "application/json"),
    (b"x" * 3_000_000, "application/json"),
    (b"{}", "application/json; charset=klingon"),
    (b"{}", "application/vnd.api+json"),
    (b"accessToken=%ff%fe&login=%00&password=%C0%80", "application/x-www-form-urlencoded"),
    (b"accessToken=a&accessToken=b&login=a&login=b", "application/x-www-form-urlencoded"),
    (b"accessToken=abc", "application/x-www-form-urlencoded; charset=klingon"),
    (b"accessToken=abc", "application/x-www-form-urlencoded; charset=utf-16"),
    (b"\xff\xfeaccessToken=abc", "application/x-www-form-urlencoded; charset=utf-8"),
    (b"a=" + b"&a=" * 5000, "application/x-www-form-urlencoded"),
    (b"garbage", "multipart/form-data; boundary=xyz"),
    (b"garbage", "multipart/form-data"),
    (b"--xyz\r\nContent-Disposition: form-data; name=\"accessToken\"\r\n\r\nabc\r\n",
     "multipart/form-data; boundary=xyz"),
    (b"--xyz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nabc\r\n--xyz--",
     "multipart/form-data; boundary=xyz"),
    (b"--\r\n", "multipart/form-data; boundary="),
    (b"abc", "text/plain"),
    (b"abc", ""),
    (b"abc", "\x00"),
    (b"abc", "application/json\x00"),
    (b"abc", "app/\xe9"),
]

QUERIES = [
    "state=a&state=b&code=c&code=d",
    "state=" + "s" * 100_000 + "&code=" + "c" * 100_000,
    "next=" + "n" * 100_000,
    "next=javascript:alert(1)", "next=//evil.example/", "next=https:evil.example",
    "next=%00", "state=%ff%fe&code=%C0%80", "code=%00&state=%00", "state=&code=",
    "next=/home/&next=https://evil.example/", "%ff=%ff", "&&&==&=",
]


@pytest.fixture
def browser():
    return Client(raise_request_exception=False)


def not_a_server_error(response, allowed=range(200, 500)):
    assert response.status_code in allowed, (response.status_code, response.content[:300])
    assert response.status_code < 500


@pytest.mark.parametrize("authorization", AUTHORIZATIONS)
def test_odd_authorization_headers_on_the_drf_view(browser, fake_pi, authorization):
    response = browser.get("/api/whoami/", HTTP_AUTHORIZATION=authorization)
    not_a_server_error(response, allowed=(401, 403))
    assert fake_pi.call_count() == 0 or authorization.lower().startswith("bearer ")


@pytest.mark.parametrize("authorization", AUTHORIZATIONS[:6] + AUTHORIZATIONS[10:14])
@pytest.mark.parametrize("url", POSTS)
def test_odd_authorization_headers_on_the_sign_in_views(browser, fake_pi, fake_peerid, url,
                                                        authorization):
    response = browser.post(url, {}, HTTP_AUTHORIZATION=authorization)
    not_a_server_error(response, allowed=(200, 400))


@pytest.mark.parametrize("body, content_type", BODIES,
                         ids=[f"body{i}" for i in range(len(BODIES))])
@pytest.mark.parametrize("url", POSTS)
def test_odd_bodies(browser, fake_pi, fake_peerid, url, body, content_type):
    response = browser.generic("POST", url, body, content_type=content_type)
    allowed = (200, 302, 400, 413) if url == "/auth/logout/" else (400, 401, 413)
    not_a_server_error(response, allowed=allowed)
    assert not Pioneer.objects.exists()
    assert SESSION_KEY not in browser.session


@pytest.mark.parametrize("body, content_type", BODIES[:12],
                         ids=[f"body{i}" for i in range(12)])
def test_odd_bodies_on_the_peerid_drf_view(browser, fake_peerid, body, content_type):
    fake_peerid.add_user(login="alice", password=PASSWORD)
    assert browser.post("/auth/peerid/login/", {"login": "alice", "password": PASSWORD}
                        ).status_code == 200
    response = browser.generic("POST", "/api/peerid/operations/", body,
                               content_type=content_type)
    not_a_server_error(response, allowed=(400, 401, 403, 413, 415))


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("url", ["/auth/peerid/authorize/", "/auth/peerid/callback/"])
def test_odd_query_strings(browser, fake_peerid, url, query):
    response = browser.get(f"{url}?{query}")
    not_a_server_error(response, allowed=(302, 400) if "authorize" in url else (400,))
    if "authorize" in url:
        stored = browser.session["_piauth_peerid_oauth"]
        assert stored["next"] in (None, "/home/")


@pytest.mark.parametrize("query", QUERIES)
def test_odd_query_strings_on_a_started_callback(browser, fake_peerid, query):
    assert browser.get("/auth/peerid/authorize/").status_code == 302
    not_a_server_error(browser.get(f"/auth/peerid/callback/?{query}"), allowed=(400,))
    assert fake_peerid.call_count() == 0


@pytest.mark.parametrize("url", [*POSTS, "/api/whoami/"])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
                                    "BREW"])
def test_other_methods(browser, fake_pi, url, method):
    not_a_server_error(browser.generic(method, url, b"{}", content_type="application/json"))


@pytest.mark.parametrize("name, value", [
    ("HTTP_X_CSRFTOKEN", "\x00" * 10), ("HTTP_COOKIE", "sessionid=\x00; csrftoken=" + "a" * 10_000),
    ("HTTP_COOKIE", "sessionid=" + "é" * 100), ("HTTP_ACCEPT", "\xff" * 1000),
    ("HTTP_X_REQUESTED_WITH", "XMLHttpRequest" * 1000), ("HTTP_HOST", "evil.example:99999"),
    ("CONTENT_LENGTH", "-1"), ("CONTENT_LENGTH", "abc"), ("HTTP_CLIENTID", "\x00"),
])
@pytest.mark.parametrize("url", POSTS)
def test_odd_other_headers(browser, fake_pi, fake_peerid, url, name, value):
    response = browser.post(url, {"accessToken": "abc", "login": "a", "password": "b"},
                            **{name: value})
    not_a_server_error(response, allowed=range(200, 500))
