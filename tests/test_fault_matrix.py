"""Every upstream call the package makes x every fault an upstream can commit, against
real loopback servers (see tests/fault_matrix.py for the table and SECURITY.md).

Each case asserts the documented outcome (503 + Retry-After, UpstreamUnavailable, a
command error), and that nothing was decided on a guess: no user, Pioneer or PeerID
credential created, no session started (an existing one kept), no verdict cached, the
credential never sent to a redirect target, an oversized answer not read to its end,
and the case over well within three deadlines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from stellar_sdk import Keypair

from django_piauth.exceptions import UpstreamUnavailable
from django_piauth.models import PeerIDCredential, Pioneer, PiPayment, SafeGrant
from django_piauth.payments import pay
from django_piauth.peerid import SESSION_KEY, peerid_operations
from django_piauth.providers.pi import get_pi_client
from django_piauth.safe import launcher_url
from django_piauth.signals import payment_approved, payment_cancelled, payment_completed
from django_piauth.testing import faults
from django_piauth.testing.base import FakeUpstreamBase
from django_piauth.testing.horizon import FakeHorizon
from django_piauth.testing.peerid import FakePeerID
from django_piauth.testing.pi import FakePiPlatform
from django_piauth.testing.safe import FakeSafeLauncher
from django_piauth.testing.server import LoopbackServer
from django_piauth.verification import local_verdicts, token_cache, token_digest, verdict_key
from django_piauth.views import STATE_SESSION_KEY
from tests import fault_matrix
from tests.fault_matrix import COMMAND, LIBRARY, STATUS_ONLY, WEB, Call
from tests.helpers import free_port
from tests.testapp.models import Delivery

pytestmark = [pytest.mark.live, pytest.mark.django_db]

CONNECT, READ, DEADLINE = 0.5, 0.3, 0.6
SAFE_AUTHORIZE_TIMEOUT = 0.3
PASSWORD = "correct horse battery"
APP = {"name": "Shop", "id": "com.example.shop", "version": "1.0", "vendor": "Example"}
OVERSIZED_TOTAL = 32 * 1024 * 1024
MAX_RESPONSE_BYTES = 256 * 1024
WALLET_SEED = Keypair.random().secret


@pytest.fixture(scope="module")
def servers():
    """Four loopback servers for the whole matrix (starting and stopping them for each
    case would double its time); each case gives them fresh fakes."""
    with (LoopbackServer(FakeUpstreamBase()) as pi, LoopbackServer(FakeUpstreamBase()) as peerid,
          LoopbackServer(FakeUpstreamBase()) as safe,
          LoopbackServer(FakeUpstreamBase()) as horizon,
          LoopbackServer(FakeUpstreamBase()) as attacker):
        yield {"pi": pi, "peerid": peerid, "safe": safe, "horizon": horizon,
               "attacker": attacker}


def _serve(server: LoopbackServer, fake: Any) -> Any:
    server.app, fake.url = fake, server.url
    return fake


@pytest.fixture
def attacker(servers):
    """Where a redirect points: a loopback server that records every call it gets."""
    return _serve(servers["attacker"], FakeUpstreamBase())


@pytest.fixture
def upstreams(servers, settings):
    settings.PIAUTH = {**settings.PIAUTH, "PI_API_URL": servers["pi"].url,
                       "PEERID_URL": servers["peerid"].url,
                       "SAFE_LAUNCHER_URL": servers["safe"].url}
    pi = _serve(servers["pi"], FakePiPlatform(server_api_key=settings.PIAUTH[
        "PI_SERVER_API_KEY"]))
    peerid = _serve(servers["peerid"], FakePeerID(settings.PIAUTH["PEERID_CLIENT_ID"],
                                                  settings.PIAUTH["PEERID_CLIENT_SECRET"]))
    safe = _serve(servers["safe"], FakeSafeLauncher())
    horizon = _serve(servers["horizon"], FakeHorizon(pi.network, platform=pi))
    pi.app_wallet = Keypair.from_secret(WALLET_SEED).public_key
    horizon.create_account(pi.app_wallet, balance=100)
    settings.PIAUTH = {**settings.PIAUTH, "PI_WALLET_SEED": WALLET_SEED,
                       "PI_NETWORK": pi.network, "PI_HORIZON_URL": servers["horizon"].url}
    settings.PIAUTH = {**settings.PIAUTH, "CONNECT_TIMEOUT": CONNECT, "READ_TIMEOUT": READ,
                       "CALL_DEADLINE": DEADLINE, "MAX_RESPONSE_BYTES": MAX_RESPONSE_BYTES,
                       "SAFE_AUTHORIZE_TIMEOUT": SAFE_AUTHORIZE_TIMEOUT,
                       "SAFE_APP": dict(APP), "SAFE_PERMISSIONS": ["SAFE_DRIVE_ACCESS"]}
    return {"pi": pi, "peerid": peerid, "safe": safe, "horizon": horizon}


@dataclass
class Case:
    """What a case set up before the fault, and what it saw after."""

    client: Client = field(default_factory=Client)
    pi_token: str | None = None
    credential: PeerIDCredential | None = None
    session_before: dict[str, Any] = field(default_factory=dict)
    payment_token: str | None = None  # a payment step's caller (its verdict cached)
    payment_id: str | None = None
    txid: str | None = None
    payee: Pioneer | None = None  # a payout's recipient


def _inject(fake: Any, fault: str, attacker: FakeUpstreamBase, settings: Any,
            service: str, path: str | None) -> faults.Fault | None:
    """Make ``fake`` (or the settings, for a refused connection) commit ``fault``."""
    if fault == "refused":
        key = {"pi": "PI_API_URL", "peerid": "PEERID_URL", "safe": "SAFE_LAUNCHER_URL",
               "horizon": "PI_HORIZON_URL"}[service]
        settings.PIAUTH = {**settings.PIAUTH, key: f"http://127.0.0.1:{free_port()}"}
        return None
    wire = {
        "hang": faults.Hang, "trickle_headers": faults.TrickleHeaders,
        "trickle_body": faults.TrickleBody, "reset": faults.ResetMidBody,
        "short": faults.ShortBody, "truncated": faults.TruncatedChunks,
        "oversized": lambda: faults.Oversized(total=OVERSIZED_TOTAL, declare_length=True),
        "oversized_streamed": lambda: faults.Oversized(total=OVERSIZED_TOTAL,
                                                       declare_length=False),
    }
    if fault in wire:
        played = wire[fault]()
        fake.fail_on_wire(played, count=None, path=path)
        return played
    bodies: dict[str, tuple[int, Any, str]] = {
        "500": (500, None, "application/json"), "502": (502, b"Bad Gateway", "text/plain"),
        "503": (503, b"", "text/plain"), "504": (504, b"<html>timeout</html>", "text/html"),
        "418": (418, b"I'm a teapot", "text/plain"),
        "html": (200, b"<html><body>maintenance</body></html>", "text/html"),
        "wrong_shape": (200, {"unexpected": [1, 2, 3]}, "application/json"),
        "deep": (200, b"[" * 100_000, "application/json"),
        "redirect": (302, {"error": "moved"}, "application/json"),
    }
    status, body, content_type = bodies[fault]
    headers = {"Location": f"{attacker.url}{path or '/v2/me'}"} if fault == "redirect" else None
    fake.fail_with(status, body, count=None, path=path, content_type=content_type,
                   headers=headers)
    return None


def _sign_in_with_peerid(case: Case, peerid: Any) -> None:
    peerid.add_user(login="alice", password=PASSWORD)
    response = case.client.post("/auth/peerid/login/", json.dumps(
        {"login": "alice", "password": PASSWORD}), content_type="application/json")
    assert response.status_code == 200, response.content
    case.credential = PeerIDCredential.objects.get()
    case.session_before = dict(case.client.session.items())


def _set_up_payment(call: Call, case: Case, pi: FakePiPlatform) -> str:
    """A signed-in Pioneer's payment at the state the step needs; the fault's path."""
    view, step = call.name.removeprefix("`pi-payment-").split("`: ")
    case.payment_token = pi.issue_token(username="alice")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {case.payment_token}"}
    assert case.client.get("/api/whoami/", **bearer).status_code == 200  # verdict cached
    pid = case.payment_id = pi.create_user_payment(pi.uid_for("alice"), "2.5", "A hat")
    if view != "approve":
        assert case.client.post(f"/auth/pi/payments/{pid}/approve/", **bearer).status_code == 200
    if view in ("complete", "incomplete"):
        case.txid = pi.submit_transaction(pid)
    return f"/v2/payments/{pid}" + ("" if step == "fetch" else f"/{step}")


def _run_payment_step(call: Call, case: Case) -> Any:
    view = call.name.removeprefix("`pi-payment-").split("`")[0]
    url, body = f"/auth/pi/payments/{case.payment_id}/{view}/", {}
    if view == "complete":
        body = {"txid": case.txid}
    elif view == "incomplete":
        url, body = "/auth/pi/payments/incomplete/", {"paymentId": case.payment_id}
    return case.client.post(url, json.dumps(body), content_type="application/json",
                            HTTP_AUTHORIZATION=f"Bearer {case.payment_token}")


def _set_up_payout(call: Call, case: Case, fakes: dict[str, Any],
                   monkeypatch: pytest.MonkeyPatch) -> str | None:
    """A Pioneer with a wallet account to pay; the fault's path (None: every call)."""
    pi, horizon = fakes["pi"], fakes["horizon"]
    pi.issue_token(username="bob")
    uid = pi.uid_for("bob")
    horizon.create_account(pi.wallet_of(uid), balance=0)
    user = get_user_model().objects.create(username="bob")
    case.payee = Pioneer.objects.create(user=user, provider="pi", uid=uid, username="bob")
    if call.name.endswith("platform create"):
        return "/v2/payments"
    if call.name.endswith("Horizon"):
        return None
    case.payment_id = "payout-of-the-fault-matrix"  # its complete call is where it fails
    monkeypatch.setattr("django_piauth.testing.pi._random_id", lambda *a: case.payment_id)
    return f"/v2/payments/{case.payment_id}/complete"


def _set_up(call: Call, case: Case, fakes: dict[str, Any],
            monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Whatever the call needs before the fault; returns the path the fault is on."""
    name = call.name
    if name.startswith("payout `pay`"):
        return _set_up_payout(call, case, fakes, monkeypatch)
    if name.startswith("`pi-payment-"):
        return _set_up_payment(call, case, fakes["pi"])
    if call.service == "pi" and call.outcome == WEB:
        case.pi_token = fakes["pi"].issue_token(username="alice")
        return "/v2/me"
    if name == "`peerid-callback` code exchange":
        response = case.client.get("/auth/peerid/authorize/")
        assert response.status_code == 302
        return "/api/v1/auth/exchange"
    if name == "PeerID refresh (`PeerIDRefreshMiddleware`)":
        _sign_in_with_peerid(case, fakes["peerid"])
        PeerIDCredential.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        return "/api/v1/auth/refreshtoken"
    if name == "`peerid_operations`":
        _sign_in_with_peerid(case, fakes["peerid"])
        return "/api/v1/app/operations"
    if name in ("`piauth_safe_status`", "`piauth_safe_revoke`"):
        SafeGrant.objects.create(
            launcher_url=launcher_url(), app_id=APP["id"], app_vendor=APP["vendor"],
            app_name=APP["name"], app_version=APP["version"],
            token=fakes["safe"].issue_token(APP), permissions_requested=["SAFE_DRIVE_ACCESS"],
            permissions_granted=["SAFE_DRIVE_ACCESS"], authorized_at=timezone.now(),
            is_valid=True)
    return None


def _run(call: Call, case: Case) -> Any:
    """The call under test: a response, a value, or the exception it raised."""
    client, name = case.client, call.name
    if name.startswith("`pi-payment-"):
        return _run_payment_step(call, case)
    if name.startswith("payout `pay`"):
        try:
            return pay(case.payee, Decimal("1.5"), "A reward")
        except Exception as exc:  # the outcome is checked by the caller
            return exc
    pi = get_pi_client
    runs: dict[str, Any] = {
        "`pi-login` view": lambda: client.post("/auth/pi/login/",
                                               {"accessToken": case.pi_token}),
        "DRF `PiAuthentication`": lambda: client.get(
            "/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {case.pi_token}"),
        "`peerid-login` view": lambda: client.post(
            "/auth/peerid/login/", {"login": "alice", "password": PASSWORD}),
        "`peerid-callback` code exchange": lambda: client.get(
            "/auth/peerid/callback/",
            {"code": "a-code", "state": client.session["_piauth_peerid_oauth"]["state"]}),
        "PeerID refresh (`PeerIDRefreshMiddleware`)": lambda: client.get(
            "/home/", HTTP_ACCEPT="application/json"),
        "Pi `get_payment`": lambda: pi().get_payment("payment-1"),
        "Pi `approve_payment`": lambda: pi().approve_payment("payment-1"),
        "Pi `complete_payment`": lambda: pi().complete_payment("payment-1", "txid-1"),
        "Pi `cancel_payment`": lambda: pi().cancel_payment("payment-1"),
        "Pi `incomplete_server_payments`": lambda: pi().incomplete_server_payments(),
        "`peerid_operations`": lambda: peerid_operations(
            case.credential, [{"op_name": "transfer", "amount": 1}]),
        "`piauth_safe_authorize`": lambda: call_command("piauth_safe_authorize"),
        "`piauth_safe_status`": lambda: call_command("piauth_safe_status"),
        "`piauth_safe_revoke`": lambda: call_command("piauth_safe_revoke"),
    }
    try:
        return runs[name]()
    except Exception as exc:  # the outcome is checked by the caller
        return exc


def _payment_rows() -> list[dict[str, Any]]:
    return list(PiPayment.objects.order_by("pk").values(
        "identifier", "status", "txid", "approved_at", "completed_at", "cancelled_at",
        "delivered_at", "step_claimed_by"))


@contextmanager
def _receiving(signalled: list[Any]) -> Iterator[None]:
    """The payment signals sent meanwhile."""
    def receive(signal: Any, **kwargs: Any) -> None:
        signalled.append(signal)

    signals = (payment_approved, payment_completed, payment_cancelled)
    for signal in signals:
        signal.connect(receive)
    try:
        yield
    finally:
        for signal in signals:
            signal.disconnect(receive)


def _check_outcome(expected: str, result: Any) -> None:
    if expected == WEB:
        assert getattr(result, "status_code", None) == 503, result
        assert result["Retry-After"] == "5"
    elif expected == LIBRARY:
        assert isinstance(result, UpstreamUnavailable), repr(result)
    elif expected == COMMAND:
        assert isinstance(result, CommandError), repr(result)
        assert "Traceback" not in str(result)
    else:
        assert expected == STATUS_ONLY
        assert not isinstance(result, Exception), repr(result)


@pytest.mark.parametrize("call, fault", fault_matrix.cases(),
                         ids=[f"{c.name.replace('`', '')}-{f}" for c, f in fault_matrix.cases()])
def test_fault(call: Call, fault: str, upstreams, attacker, settings, capsys, monkeypatch,
               django_capture_on_commit_callbacks):
    case = Case()
    if call.service == "safe":  # a grant is kept per Launcher URL: set up at the one used
        played = _inject(upstreams["safe"], fault, attacker, settings, "safe", None)
        _set_up(call, case, upstreams, monkeypatch)
    else:
        path = _set_up(call, case, upstreams, monkeypatch)
        played = _inject(upstreams[call.service], fault, attacker, settings, call.service,
                         path)
    users, pioneers = get_user_model().objects.count(), Pioneer.objects.count()  # after set-up
    credentials = PeerIDCredential.objects.count()
    payments, deliveries = _payment_rows(), Delivery.objects.count()

    signalled: list[Any] = []
    with _receiving(signalled), django_capture_on_commit_callbacks(execute=True) as committed:
        started = time.monotonic()
        result = _run(call, case)
        elapsed = time.monotonic() - started

    _check_outcome(fault_matrix.expected(call, fault), result)
    deadline = DEADLINE + (SAFE_AUTHORIZE_TIMEOUT if "authorize" in call.name else 0)
    assert elapsed < 3 * deadline, f"{elapsed:.2f}s"
    # Nothing decided on a guess.
    assert get_user_model().objects.count() == users
    assert Pioneer.objects.count() == pioneers
    assert PeerIDCredential.objects.count() == credentials
    if case.payee is not None:  # a payout stores each step: nothing may be paid twice
        paid = [t for t in upstreams["horizon"].transactions]
        # Paid before the fault only when it hits the completion (a refused connection
        # is the whole Pi Platform, creation included); never twice.
        reached_chain = call.name.endswith("complete") and fault != "refused"
        assert len(paid) == (1 if reached_chain else 0)
        assert WALLET_SEED not in repr(result) + str(result)
    else:
        assert _payment_rows() == payments  # nothing stored (no claim left behind either)
    assert Delivery.objects.count() == deliveries and signalled == [] and committed == []
    session = case.client.session
    after = {k: v for k, v in session.items() if k != STATE_SESSION_KEY}  # used once
    assert after == case.session_before  # none started, none ended
    if case.credential is not None:
        kept = PeerIDCredential.objects.get(pk=case.credential.pk)
        assert kept.revoked_at is None and kept.access_token == case.credential.access_token
        assert session.get(SESSION_KEY) == case.credential.pk
        assert AUTH_SESSION_KEY in session
    if case.pi_token is not None:
        assert token_cache().get(verdict_key(token_digest(case.pi_token))) is None
        assert local_verdicts.get(verdict_key(token_digest(case.pi_token))) is None
    assert attacker.calls == []
    if isinstance(played, faults.Oversized):
        assert not played.finished.is_set()
        assert played.sent < 8 * 1024 * 1024, played.sent
    assert "Traceback" not in capsys.readouterr().err


def test_the_next_request_asks_upstream_again(upstreams):
    """An outage is never cached: the same token is verified anew once upstream is back."""
    pi = upstreams["pi"]
    token = pi.issue_token(username="alice")
    pi.fail_with(502, b"Bad Gateway", content_type="text/plain")
    assert Client().get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 503
    assert Client().get("/api/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert pi.call_count("/v2/me") == 2


def test_security_md_carries_the_generated_table():
    text = (Path(__file__).resolve().parent.parent / "SECURITY.md").read_text()
    start, end = "<!-- fault-matrix:start -->\n", "<!-- fault-matrix:end -->"
    assert start in text and end in text
    table = text.split(start, 1)[1].split(end, 1)[0]
    assert table == fault_matrix.markdown_table(), (
        "SECURITY.md's fault matrix is out of date: regenerate it with "
        "`python -m tests.fault_matrix`")
