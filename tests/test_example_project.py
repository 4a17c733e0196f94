"""The example project as a newcomer uses it: the fakes (Pi Platform and PeerID) and the
site as real processes on loopback, the sign-in done the way the page's JavaScript does it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from tests.helpers import free_port, running, wait_until_it_answers

pytestmark = pytest.mark.live
ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_project" / "manage.py"
#: What a PeerID token looks like (the fake's: 124 letters and digits); none may show.
TOKEN_LIKE = re.compile(r"[A-Za-z0-9]{100,}")


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory):
    """A migrated database with the demo superuser, made once; (its path, the password)."""
    db = tmp_path_factory.mktemp("example") / "demo.sqlite3"
    env = {**os.environ, "PIAUTH_DEMO_DB": str(db)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    run = {"env": env, "cwd": ROOT, "check": True, "capture_output": True, "text": True}
    subprocess.run([sys.executable, MANAGE, "migrate", "--noinput"], **run)
    setup = subprocess.run([sys.executable, MANAGE, "demo_setup"], **run)
    return db, re.search(r"password:\s+(\S+)", setup.stdout).group(1)


@pytest.fixture
def example_site(tmp_path, migrated_db):
    template_db, password = migrated_db
    db = tmp_path / "demo.sqlite3"
    shutil.copyfile(template_db, db)  # each test starts from the same fresh database
    fake_port, peerid_port, site_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PIAUTH_PI_API_URL": f"http://127.0.0.1:{fake_port}",
        "PIAUTH_PEERID_URL": f"http://127.0.0.1:{peerid_port}",
        "PIAUTH_DEMO_DB": str(db),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    started = {"env": env, "cwd": ROOT, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT,
               "text": True}
    # As scripts/demo runs it: PeerID's consent page approves for alice at once.
    fake = [sys.executable, "-m", "django_piauth.testing", "--port", str(fake_port),
            "--peerid-port", str(peerid_port), "--peerid-auto-approve"]
    site = [sys.executable, MANAGE, "runserver", "--noreload", f"127.0.0.1:{site_port}"]
    with running(fake, site, **started) as (fake_process, site_process):
        wait_until_it_answers(f"http://127.0.0.1:{fake_port}/", fake_process)
        wait_until_it_answers(f"http://127.0.0.1:{peerid_port}/", fake_process)
        wait_until_it_answers(f"http://127.0.0.1:{site_port}/", site_process)
        yield SimpleNamespace(site=f"http://127.0.0.1:{site_port}",
                              fake=f"http://127.0.0.1:{fake_port}",
                              peerid=f"http://127.0.0.1:{peerid_port}", password=password)


def test_sign_in_on_the_example_page_then_find_the_pioneer_in_the_admin(example_site):
    site, fake, password = example_site.site, example_site.fake, example_site.password
    browser = requests.Session()
    page = browser.get(f"{site}/")
    assert page.status_code == 200
    assert "Sign in with Pi" in page.text

    # The page's stand-in for Pi.authenticate, then its POST to pi-login.
    auth = requests.post(f"{fake}/_fake/authenticate", json={"username": "alice"},
                         timeout=5).json()
    login = browser.post(
        f"{site}/auth/pi/login/",
        json={"accessToken": auth["accessToken"]},
        headers={"X-CSRFToken": browser.cookies["csrftoken"], "Referer": f"{site}/"},
    )
    assert login.status_code == 200
    assert login.json()["username"] == "alice"

    welcome = browser.get(f"{site}/")
    assert "Welcome, alice" in welcome.text
    assert auth["user"]["uid"] in welcome.text
    assert 'id="peerid-status"' not in welcome.text  # a Pi session, not a PeerID one
    # The PeerID demo operation is for PeerID sessions only.
    not_peerid = browser.post(f"{site}/api/peerid/operation/", json={},
                              headers={"X-CSRFToken": browser.cookies["csrftoken"]})
    assert not_peerid.status_code == 403

    # The API with the same token as a bearer, no session.
    api = requests.get(f"{site}/api/items/",
                       headers={"Authorization": f"Bearer {auth['accessToken']}"}, timeout=5)
    assert api.status_code == 200
    assert requests.get(f"{site}/api/items/",
                        headers={"Authorization": "Bearer forged"}, timeout=5).status_code == 401

    admin = requests.Session()
    admin.get(f"{site}/admin/login/")
    signed_in = admin.post(
        f"{site}/admin/login/?next=/admin/",
        data={"username": "admin", "password": password,
              "csrfmiddlewaretoken": admin.cookies["csrftoken"], "next": "/admin/"},
        headers={"Referer": f"{site}/admin/login/"},
    )
    assert signed_in.url.endswith("/admin/")
    pioneers = admin.get(f"{site}/admin/django_piauth/pioneer/")
    assert pioneers.status_code == 200
    assert auth["user"]["uid"] in pioneers.text
    assert "1 Pioneer" in pioneers.text


def post_json(browser, url, data, site):
    """As the page's postJson: the csrftoken cookie read afresh before every POST."""
    return browser.post(url, json=data, timeout=10, headers={
        "X-CSRFToken": browser.cookies.get("csrftoken", ""), "Referer": f"{site}/"})


def test_peerid_sign_in_status_and_operation_on_the_example_page(example_site):
    site = example_site.site
    browser = requests.Session()
    page = browser.get(f"{site}/")
    assert "Sign in with PeerID" in page.text
    assert 'href="/auth/peerid/authorize/?next=/"' in page.text

    # The page's PeerID form: a wrong password is refused and signs nobody in.
    wrong = post_json(browser, f"{site}/auth/peerid/login/",
                      {"login": "alice", "password": "nope"}, site)
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "invalid_credentials"
    assert "Welcome" not in browser.get(f"{site}/").text

    login = post_json(browser, f"{site}/auth/peerid/login/",
                      {"login": "alice", "password": "alice-demo"}, site)
    assert login.status_code == 200, login.text
    uid = login.json()["uid"]
    assert login.json()["username"] == "alice"

    status = browser.get(f"{site}/")
    assert "Welcome, alice" in status.text
    assert f'<code id="peerid-uid">{uid}</code>' in status.text
    assert 'id="peerid-refreshed">never<' in status.text
    assert "Sign in with PeerID" not in status.text
    assert not TOKEN_LIKE.search(status.text)
    assert "fake-peerid-secret" not in status.text

    # The demo operation: the session's token, through peerid_operations.
    operation = post_json(browser, f"{site}/api/peerid/operation/", {}, site)
    assert operation.status_code == 200, operation.text
    assert operation.json()["result"][0]["op_name"] == "transfer"
    assert operation.json()["refreshed"] is False
    assert not TOKEN_LIKE.search(operation.text)
    # PeerID answers 401 to a stale access token: the site refreshes once and retries.
    retried = post_json(browser, f"{site}/api/peerid/operation/", {"simulate_401": True}, site)
    assert retried.status_code == 200, retried.text
    assert retried.json()["refreshed"] is True
    assert retried.json()["result"][0]["op_name"] == "transfer"
    assert not TOKEN_LIKE.search(retried.text)
    refreshed = browser.get(f"{site}/")
    assert "Welcome, alice" in refreshed.text
    assert 'id="peerid-refreshed">never<' not in refreshed.text
    # CSRF stays on for the session.
    assert browser.post(f"{site}/api/peerid/operation/", json={}).status_code == 403

    # The authorization-code link: PeerID's consent (auto-approved for alice), the callback,
    # then back on the page, signed in.
    coder = requests.Session()
    coder.get(f"{site}/")
    signed_in = coder.get(f"{site}/auth/peerid/authorize/?next=/", timeout=10)
    assert signed_in.status_code == 200
    assert signed_in.url == f"{site}/"
    hops = [response.url for response in signed_in.history]
    assert hops[0].startswith(f"{site}/auth/peerid/authorize/")
    assert hops[1].startswith(f"{example_site.peerid}/permissions?")
    assert hops[2].startswith(f"{site}/auth/peerid/callback/?code=")
    assert "Welcome, alice" in signed_in.text
    assert f'<code id="peerid-uid">{uid}</code>' in signed_in.text
    assert not TOKEN_LIKE.search(signed_in.text)
    assert post_json(coder, f"{site}/api/peerid/operation/", {}, site).status_code == 200
    # A callback that was not started here is refused.
    stray = requests.get(f"{site}/auth/peerid/callback/?code=x&state=y", timeout=5)
    assert stray.status_code == 400

    # Signing out ends the PeerID session.
    out = browser.post(f"{site}/auth/logout/", data={"next": "/"},
                       headers={"X-CSRFToken": browser.cookies["csrftoken"]})
    assert out.status_code == 200
    assert "Sign in with PeerID" in out.text
