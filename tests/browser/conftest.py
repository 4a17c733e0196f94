"""The example project in headless Chromium: the site as a real ``runserver`` subprocess on
a fresh SQLite database, the fake upstreams as real loopback HTTP servers, and Debian's
``/usr/bin/chromium`` driven through Playwright (never a downloaded browser).

The fakes (Pi Platform, PeerID, Horizon) are the ones ``python -m django_piauth.testing``
serves for ``scripts/demo``, set up the same way, but served from this process with
:class:`~django_piauth.testing.server.LoopbackServer`: the command line has no control
routes, and the scenarios need the fakes' controls (an outage, an expired access token, a
dead refresh token) and their call logs.

Every step of a scenario (an action and what it asserts) saves a screenshot, numbered in
run order, in ``$PIAUTH_SCREENSHOTS`` (default ``.artifacts/browser/`` at the repository
root), and counts as a "browser steps" in the totals at the end of the run.
"""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.counts import counted
from tests.helpers import (
    example_project_env,
    free_port,
    migrate_example_project,
    running,
    wait_until_it_answers,
)

ROOT = Path(__file__).resolve().parents[2]
MANAGE = ROOT / "example_project" / "manage.py"
CHROMIUM = "/usr/bin/chromium"
#: Without the background-networking flags Chromium keeps calling out to a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("PIAUTH_SCREENSHOTS") or ROOT / ".artifacts" / "browser")
#: What this suite names its screenshots (only those are cleared at the start of a run).
SCREENSHOT_NAME = re.compile(r"\d{2,}-[a-z0-9-]+\.png")
#: The demo settings' published app wallet (scripts/demo gives the fake Horizon its address).
DEMO_WALLET_ADDRESS = "GBW7QS2DSS7HSQOVEVNLSCCWDMEWQDLBFDLPQRO7ZPASUDYK3B53CKS4"
#: Milliseconds Playwright waits for what a page should show.
TIMEOUT_MS = 10_000


def _cannot_run(message: str) -> None:
    """No browser here: skip, except under CI=true, where the browser tests must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: the browser tests must run; scripts/test "
                    "installs Debian's chromium)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole run."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _cannot_run(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _cannot_run("Playwright for Python is not installed (pip install -e '.[test]')")
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def fakes() -> Iterator[SimpleNamespace]:
    """The fake Pi Platform, PeerID (demo user ``alice`` / ``alice-demo``) and Horizon, as
    ``python -m django_piauth.testing`` sets them up for scripts/demo, on loopback ports.
    The PeerID consent page asks (no auto-approve): the scenarios sign in on it."""
    from django_piauth.testing.horizon import FakeHorizon
    from django_piauth.testing.peerid import FakePeerID
    from django_piauth.testing.pi import FakePiPlatform
    from django_piauth.testing.server import LoopbackServer

    pi = FakePiPlatform(uid_seed="django-piauth-demo")
    pi.app_wallet = DEMO_WALLET_ADDRESS
    peerid = FakePeerID()
    peerid.add_user("alice", "alice-demo")
    horizon = FakeHorizon(pi.network, platform=pi, open_pioneer_accounts=True)
    horizon.create_account(DEMO_WALLET_ADDRESS, balance=1_000_000)
    with (LoopbackServer(pi) as pi_server, LoopbackServer(peerid) as peerid_server,
          LoopbackServer(horizon) as horizon_server):
        pi.url, peerid.url, horizon.url = pi_server.url, peerid_server.url, horizon_server.url
        yield SimpleNamespace(pi=pi, peerid=peerid, horizon=horizon)


class DemoSite(SimpleNamespace):
    """The running example project: ``url``, ``db`` (its SQLite file), ``admin_password``."""

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """A read-only query of the site's database, as it is now."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(sql, params).fetchall()


@pytest.fixture(scope="session")
def demo_site(fakes, tmp_path_factory) -> Iterator[DemoSite]:
    """The example project as scripts/demo runs it (migrate, demo_setup, runserver), on a
    fresh database and a free port, talking to the fakes."""
    workdir = tmp_path_factory.mktemp("browser-demo")
    db = workdir / "demo.sqlite3"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The demo's defaults, the Server API Key the fake Pi Platform accepts among them.
    env = example_project_env(db, pi=fakes.pi.url, peerid=fakes.peerid.url,
                              horizon=fakes.horizon.url)
    admin_password = migrate_example_project(db, base_url=url)
    log_path = workdir / "runserver.log"
    site = [sys.executable, MANAGE, "runserver", "--noreload", f"127.0.0.1:{port}"]
    with (log_path.open("w") as log,
          running(site, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
          as (process,)):
        try:
            wait_until_it_answers(f"{url}/", process)
        except AssertionError:
            raise AssertionError(f"the example project did not start:\n"
                                 f"{log_path.read_text()}") from None
        yield DemoSite(url=url, db=db, admin_password=admin_password, log=log_path)


@pytest.fixture(scope="session")
def _screenshots() -> Iterator[itertools.count]:
    """The screenshot folder, emptied of a previous run's screenshots; the step numbers."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.iterdir():
        if SCREENSHOT_NAME.fullmatch(old.name):
            old.unlink()
    yield itertools.count(1)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].rstrip("-")


class Scenario:
    """The steps of one scenario: each saves a screenshot and, once passed, counts."""

    def __init__(self, name: str, numbers: itertools.count, page: Any = None) -> None:
        self.name = name
        self.numbers = numbers
        self.page = page  # the page a step's screenshot shows unless it names another
        self.screenshots: list[Path] = []

    def _shoot(self, page: Any, step: str) -> None:
        path = SCREENSHOTS / f"{next(self.numbers):02d}-{self.name}-{_slug(step)}.png"
        page.screenshot(path=str(path), full_page=True)
        self.screenshots.append(path)

    @contextmanager
    def step(self, what: str, page: Any = None) -> Iterator[None]:
        """``with scenario.step("click sign in, see the name"): ...``: the action and its
        assertions; then a screenshot of ``page`` (default: the scenario's page)."""
        try:
            yield
        except BaseException:
            shown = page or self.page
            if shown is not None and not shown.is_closed():
                with suppress(Exception):  # the step's own error is what matters
                    self._shoot(shown, f"{what} FAILED")
            raise
        shown = page or self.page
        if shown is not None:
            self._shoot(shown, what)
        counted("browser steps")


@pytest.fixture
def scenario(request, _screenshots) -> Scenario:
    """The test's scenario, named after the test (``test_pi_first_visit`` -> ``pi-first-visit``)."""
    return Scenario(_slug(request.node.name.removeprefix("test_")), _screenshots)


@pytest.fixture
def new_context(browser, demo_site) -> Iterator[Callable[..., Any]]:
    """A fresh browser context (cookies of its own, as another browser) on the site; every
    page's uncaught JavaScript errors fail the test. All closed at the end."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1000, "height": 800})
        context = browser.new_context(base_url=demo_site.url, **options)
        context.set_default_timeout(TIMEOUT_MS)
        context.on("page", lambda page: page.on(
            "pageerror", lambda error: errors.append(f"{page.url}: {error}")))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the pages: {errors}"


@pytest.fixture
def page(new_context, scenario) -> Any:
    """A page in a fresh context: the scenario's page."""
    scenario.page = new_context().new_page()
    return scenario.page


@pytest.fixture
def clean_fakes(fakes) -> Iterator[SimpleNamespace]:
    """The fakes with no injected failure and PeerID's usual token lifetimes, after the
    test as before it (scenarios change them)."""
    def reset() -> None:
        for fake in (fakes.pi, fakes.peerid, fakes.horizon):
            fake.clear_failures()
        fakes.peerid.access_lifetime = 3600
        fakes.peerid.refresh_lifetime = None

    reset()
    yield fakes
    reset()



# What the scenarios do often -------------------------------------------------------------

def pi_sign_in(page: Any, username: str) -> None:
    """On the signed-out home page: the Pioneer (as the Pi Browser knows them) presses
    "Sign in with Pi (demo)"; no password, no form to fill in but who is in the Pi Browser."""
    page.locator("#pi-username").fill(username)
    page.get_by_role("button", name="Sign in with Pi (demo)").click()


def peerid_sign_in(page: Any, login: str, password: str) -> None:
    """On the signed-out home page: PeerID's password form."""
    page.locator("#peerid-login").fill(login)
    page.locator("#peerid-password").fill(password)
    page.get_by_role("button", name="Sign in with PeerID", exact=True).click()


def calls(fake: Any, path: str | None = None, since: int = 0) -> list[tuple[str, str, int]]:
    """The fake's calls from number ``since`` on, as (method, path, status); only those on
    ``path`` or under it when given."""
    return [(call.method, call.path, call.status) for call in fake.calls[since:]
            if path is None or call.path == path or call.path.startswith(path + "/")]
