"""The example project's API fuzzed from its own OpenAPI schema (/api/schema/, made by
drf-spectacular with django_piauth.openapi's extensions), live: the fakes and the site as
real processes on loopback, schemathesis generating the requests.

Every operation gets valid (``positive``) and invalid (``negative``) data, sent as nobody,
with a real Pi access token, with a Pi session (with and without its CSRF token), with a
PeerID session, and with random, malformed ``Authorization`` headers and cookies. Every
answer must be documented: its status code, content type, headers and body; no 5xx but a
documented 503. A second site whose Pi Platform is down must answer the documented 503
(with ``Retry-After``), never another 5xx.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.counts import counted  # noqa: E402
from tests.helpers import (  # noqa: E402
    example_project_env,
    free_port,
    migrate_example_project,
    running,
    wait_until_it_answers,
)

pytestmark = [pytest.mark.live, pytest.mark.example_project]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "example_project"))
from demo.settings import DEMO_WALLET_ADDRESS  # noqa: E402

MANAGE = ROOT / "example_project" / "manage.py"
#: The example project's operations, all of them fuzzed: a new one fails
#: test_the_schema_describes_the_operations_fuzzed until it is added here.
OPERATIONS = [
    "GET /api/items/",
    "POST /api/items/",
    "POST /api/peerid/operation/",
    "GET /api/purchases/",
    "POST /auth/pi/payments/{payment_id}/approve/",
    "POST /auth/pi/payments/{payment_id}/cancel/",
    "POST /auth/pi/payments/{payment_id}/complete/",
    "POST /auth/pi/payments/incomplete/",
]
#: Examples per operation, mode and site: 8 operations x 2 modes x 30 = 480 cases, and
#: 8 x 10 more on the site whose Pi Platform is down.
EXAMPLES = 30
OUTAGE_EXAMPLES = 10
#: What every answer is checked for (status code, content type, headers, body: all as
#: the schema documents them for this operation); no_undocumented_5xx on top.
CHECKS = [status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
FUZZ_SETTINGS = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


def start_fakes_and_site(tmp_path: Path, template_db: Path, *, pi_down: bool = False):
    """The fakes and the example site (runserver) on free loopback ports, on a copy of the
    migrated database; ``pi_down``: the site's Pi Platform is a port nobody listens on."""
    db = tmp_path / "demo.sqlite3"
    shutil.copyfile(template_db, db)
    fake_port, peerid_port, horizon_port, site_port = (free_port() for _ in range(4))
    pi_port = free_port() if pi_down else fake_port  # free: connection refused
    env = example_project_env(db, pi=f"http://127.0.0.1:{pi_port}",
                              peerid=f"http://127.0.0.1:{peerid_port}",
                              horizon=f"http://127.0.0.1:{horizon_port}")
    started = {"env": env, "cwd": ROOT, "stderr": subprocess.STDOUT, "text": True}
    fake = [sys.executable, "-m", "django_piauth.testing", "--port", str(fake_port),
            "--peerid-port", str(peerid_port), "--horizon-port", str(horizon_port),
            "--app-wallet", DEMO_WALLET_ADDRESS]
    site = [sys.executable, MANAGE, "runserver", "--noreload", "--skip-checks",
            f"127.0.0.1:{site_port}"]
    return env, fake, site, started, SimpleNamespace(
        url=f"http://127.0.0.1:{site_port}", fake=f"http://127.0.0.1:{fake_port}",
        peerid=f"http://127.0.0.1:{peerid_port}", horizon=f"http://127.0.0.1:{horizon_port}",
        log=tmp_path / "site.log")


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    """A migrated example database with the demo's users, made once."""
    db = tmp_path_factory.mktemp("fuzz-db") / "demo.sqlite3"
    migrate_example_project(db)
    return db


def serve(tmp_path: Path, template_db: Path, *, pi_down: bool = False):
    _env, fake, site, started, where = start_fakes_and_site(tmp_path, template_db,
                                                            pi_down=pi_down)
    with (where.log.open("w") as log,
          running(fake, stdout=log, **started) as (fake_process,),
          running(site, stdout=log, **started) as (site_process,)):
        wait_until_it_answers(f"{where.fake}/", fake_process)
        wait_until_it_answers(f"{where.peerid}/", fake_process)
        wait_until_it_answers(f"{where.url}/", site_process)
        yield where


@pytest.fixture(scope="module")
def site(tmp_path_factory, template_db):
    yield from serve(tmp_path_factory.mktemp("fuzz-site"), template_db)


@pytest.fixture(scope="module")
def outage_site(tmp_path_factory, template_db):
    yield from serve(tmp_path_factory.mktemp("fuzz-outage"), template_db, pi_down=True)


@dataclass
class Caller:
    """Who sends a request: headers and cookies added to the generated ones.

    schemathesis fills in the security schemes itself, with random values (a random
    bearer token, a random session cookie). ``only`` callers (the signed-in ones, and
    nobody) send their own credentials and none of those; the others send theirs on top.
    """

    name: str
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    only: bool = False

    def apply_to(self, case) -> None:
        if self.only:
            case.headers = {name: value for name, value in (case.headers or {}).items()
                            if name.lower() not in {"authorization", "x-csrftoken"}}
            case.cookies = {name: value for name, value in (case.cookies or {}).items()
                            if name not in {"sessionid", "csrftoken"}}


def pi_token(site, username: str) -> str:
    """A real Pi access token from the fake platform (its Pi.authenticate)."""
    answer = requests.post(f"{site.fake}/_fake/authenticate", timeout=5,
                           json={"username": username, "scopes": ["username", "payments"]})
    answer.raise_for_status()
    return answer.json()["accessToken"]


def signed_in_session(site, path: str, body: dict[str, str]) -> requests.Session:
    browser = requests.Session()
    browser.get(f"{site.url}/", timeout=5)  # the page sets the CSRF cookie
    login = browser.post(f"{site.url}{path}", json=body, timeout=10, headers={
        "X-CSRFToken": browser.cookies["csrftoken"], "Referer": f"{site.url}/"})
    assert login.status_code == 200, login.text
    return browser


def session_caller(name: str, browser: requests.Session, *, csrf: bool = True) -> Caller:
    cookies = {"sessionid": browser.cookies["sessionid"],
               "csrftoken": browser.cookies["csrftoken"]}
    headers = {"X-CSRFToken": browser.cookies["csrftoken"]} if csrf else {}
    return Caller(name, headers, cookies, only=True)


def create_payment(site, token: str) -> str:
    """A user-to-app payment for the demo sticker at the fake platform, or the Pioneer's
    unfinished one: its identifier."""
    created = requests.post(f"{site.fake}/_fake/create_payment", timeout=5, json={
        "accessToken": token, "amount": 1, "memo": "fuzz", "metadata": {"item": "sticker"}})
    if created.status_code == 409:  # ongoing_payment_found: that one, then
        return created.json()["payment"]["identifier"]
    assert created.status_code == 200, created.text
    return created.json()["identifier"]


#: Header text http.client sends as it is: printable latin-1, no CR or LF.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                    exclude_characters="\x7f"), max_size=80)


def malformed_callers(token: str) -> st.SearchStrategy[Caller]:
    """Random and malformed credentials: Authorization headers, session and CSRF cookies."""
    schemes = st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", "", "Bearer:"])
    separators = st.sampled_from([" ", "  ", "\t", "", " \t "])
    tails = st.one_of(HEADER_TEXT, st.just(token), st.just(f"{token} {token}"),
                      st.just(f"{token[:-1]}x"), st.just("a" * 5000))
    # requests refuses a value that starts with white space: the server never sees one.
    authorization = st.builds(lambda s, sep, t: f"{s}{sep}{t}".lstrip(), schemes,
                              separators, tails)
    return st.one_of(
        st.builds(lambda value: Caller("a malformed Authorization",
                                       {"Authorization": value}), authorization),
        st.builds(lambda value: Caller("random Authorization", {"Authorization": value}),
                  HEADER_TEXT.map(str.lstrip)),
        st.builds(lambda session, csrf: Caller("random cookies",
                                               {"X-CSRFToken": csrf} if csrf else {},
                                               {"sessionid": session, "csrftoken": csrf}),
                  st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                        exclude_characters=';,"\\'), max_size=64),
                  st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                        exclude_characters=';,"\\'), max_size=64)),
    )


@pytest.fixture(scope="module")
def callers(site):
    """Everyone the fuzzer sends as, and the payments it may name (beside random ids)."""
    alice = pi_token(site, "alice")
    bob = pi_token(site, "bob")
    pi_browser = signed_in_session(site, "/auth/pi/login/", {"accessToken": alice})
    peerid_browser = signed_in_session(site, "/auth/peerid/login/",
                                       {"login": "alice", "password": "alice-demo"})
    signed_in = st.sampled_from([
        Caller("Pi bearer", {"Authorization": f"Bearer {alice}"}, only=True),
        Caller("another Pioneer's Pi bearer", {"Authorization": f"Bearer {bob}"}, only=True),
        session_caller("Pi session", pi_browser),
        session_caller("PeerID session", peerid_browser),
    ])
    refused = st.sampled_from([
        Caller("nobody", only=True),
        Caller("an unknown Pi token", {"Authorization": "Bearer not-a-token-the-fake-made"}),
        session_caller("Pi session without CSRF", pi_browser, csrf=False),
    ])
    # About 3 requests in 5 signed in, 1 refused, 1 with malformed credentials (one_of
    # would weigh each of the malformed kinds like all the signed-in callers together).
    weighed = st.sampled_from([signed_in] * 3 + [refused, malformed_callers(alice)])
    return SimpleNamespace(strategy=weighed.flatmap(lambda callers: callers),
                           tokens={"alice": alice, "bob": bob})


@pytest.fixture
def payments(site, callers):
    """alice's unfinished payment (so that approve, complete and cancel can reach 200 and
    409; a fresh one once the last is finished) and bob's (403 ``not_yours`` for alice)."""
    return [create_payment(site, callers.tokens["alice"]),
            create_payment(site, callers.tokens["bob"])]


def load_schema(site):
    schema = schemathesis.openapi.from_url(f"{site.url}/api/schema/", timeout=10)
    schema.config.update(base_url=site.url)
    return schema


@pytest.fixture(scope="module")
def schema(site):
    return load_schema(site)


def test_the_schema_describes_the_operations_fuzzed(schema):
    labels = sorted(result.ok().label for result in schema.get_all_operations())
    assert labels == sorted(OPERATIONS)


def no_undocumented_5xx(case, response) -> None:
    """No 5xx but a 503 the operation documents (status_code_conformance checks that every
    status is documented; this one says that no other 5xx is acceptable even then)."""
    if response.status_code >= 500:
        documented = case.operation.definition.raw.get("responses", {})
        assert response.status_code == 503 and "503" in documented, (
            f"{case.operation.label} answered {response.status_code}: {response.text[:500]}")
        retry_after = response.headers.get("retry-after", [""])  # names in lower case
        assert re.fullmatch(r"[0-9]+", retry_after[0]), "a 503 without a Retry-After"


def fuzz(schema, label: str, mode: GenerationMode, callers, *, examples: int,
         payments: list[str] = ()) -> dict[int, int]:
    """``examples`` generated requests to the operation, each from a drawn caller; every
    answer checked; the statuses seen, counted."""
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    http = requests.Session()
    statuses: dict[int, int] = {}
    ran = 0

    has_payment_id = "{payment_id}" in label

    @settings(FUZZ_SETTINGS, max_examples=examples)
    @given(case=operation.as_strategy(generation_mode=mode), caller=callers,
           payment=st.sampled_from([None, *payments]))
    def one(case, caller, payment):
        nonlocal ran
        if has_payment_id and payment is not None:
            case.path_parameters = {**(case.path_parameters or {}), "payment_id": payment}
        caller.apply_to(case)
        ran += 1
        try:
            response = case.call(session=http, headers=caller.headers,
                                 cookies=caller.cookies, allow_redirects=False, timeout=20)
        finally:
            http.cookies.clear()  # the next caller starts with only its own cookies
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        no_undocumented_5xx(case, response)
        case.validate_response(response, checks=CHECKS, headers=caller.headers)

    try:
        one()
    finally:
        counted("schema cases", ran)
        http.close()
    return statuses


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=str)
@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz_the_example_api(schema, callers, payments, label, mode):
    statuses = fuzz(schema, label, mode, callers.strategy, examples=EXAMPLES,
                    payments=payments)
    assert all(status < 500 for status in statuses), statuses  # the Pi Platform is up
    if label.startswith("GET "):  # 3 callers in 5 are signed in: some must get through
        assert 200 in statuses, statuses


def test_a_payment_id_with_a_line_feed_reaches_the_view(site, callers):
    """Any text reaches the view, which answers 400 ``bad_payment_id`` for an id that is
    not a plain path segment. The fuzzer found that a line feed did not (``<path:...>``
    stops at one): Django's HTML 404 instead."""
    response = requests.post(f"{site.url}/auth/pi/payments/a%0Ab/approve/", timeout=10,
                             headers={"Authorization": f"Bearer {callers.tokens['alice']}"})
    assert response.status_code == 400, response.status_code
    assert response.json()["code"] == "bad_payment_id"


@pytest.fixture(scope="module")
def outage_schema(outage_site):
    return load_schema(outage_site)


@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz_the_example_api_while_the_pi_platform_is_down(outage_schema, label):
    """Random bearer tokens (never cached) with the Pi Platform unreachable: the documented
    503 with Retry-After (or a 4xx for a request refused before any platform call)."""
    tokens = st.builds(lambda t: Caller("a token nobody can verify",
                                        {"Authorization": f"Bearer {t}"}, only=True),
                       st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=8,
                               max_size=40))
    statuses = fuzz(outage_schema, label, GenerationMode.POSITIVE, tokens,
                    examples=OUTAGE_EXAMPLES)
    assert 503 in statuses, statuses
