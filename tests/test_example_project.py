"""The example project as a newcomer uses it: the fake platform and the site as real
processes on loopback, the sign-in done the way the page's JavaScript does it."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.live
ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_project" / "manage.py"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url, process, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited: {process.stdout.read()}")
        try:
            return requests.get(url, timeout=1)
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {seconds}s")


@pytest.fixture
def example_site(tmp_path):
    fake_port, site_port = free_port(), free_port()
    env = {
        **os.environ,
        "PIAUTH_PI_API_URL": f"http://127.0.0.1:{fake_port}",
        "PIAUTH_DEMO_DB": str(tmp_path / "demo.sqlite3"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    run = {"env": env, "cwd": ROOT, "check": True, "capture_output": True, "text": True}
    subprocess.run([sys.executable, MANAGE, "migrate", "--noinput"], **run)
    setup = subprocess.run([sys.executable, MANAGE, "demo_setup",
                            "--base-url", f"http://127.0.0.1:{site_port}"], **run)
    password = re.search(r"password:\s+(\S+)", setup.stdout).group(1)
    started = {"env": env, "cwd": ROOT, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT,
               "text": True}
    fake = subprocess.Popen([sys.executable, "-m", "django_piauth.testing",
                             "--port", str(fake_port)], **started)
    site = subprocess.Popen([sys.executable, MANAGE, "runserver", "--noreload",
                             f"127.0.0.1:{site_port}"], **started)
    try:
        wait_for(f"http://127.0.0.1:{fake_port}/", fake)
        wait_for(f"http://127.0.0.1:{site_port}/", site)
        yield f"http://127.0.0.1:{site_port}", f"http://127.0.0.1:{fake_port}", password
    finally:
        for process in (site, fake):
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
            process.stdout.close()


def test_sign_in_on_the_example_page_then_find_the_pioneer_in_the_admin(example_site):
    site, fake, password = example_site
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
