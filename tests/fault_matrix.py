"""The upstream fault matrix as data: every upstream call the package makes, every fault
an upstream can commit, and the documented outcome of each pair.

``tests/test_fault_matrix.py`` runs every cell against real loopback servers;
``python -m tests.fault_matrix`` prints the table that SECURITY.md carries.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

WEB = "503 + Retry-After"
LIBRARY = "UpstreamUnavailable"
COMMAND = "command error"
STATUS_ONLY = "accepted (only the status counts)"


@dataclass(frozen=True)
class Call:
    """One upstream call, as a user of the package triggers it."""

    name: str
    service: str  # "pi", "peerid", "safe" or "horizon": the upstream that misbehaves
    outcome: str  # WEB, LIBRARY or COMMAND


CALLS: list[Call] = [
    Call("`pi-login` view", "pi", WEB),
    Call("DRF `PiAuthentication`", "pi", WEB),
    Call("`peerid-login` view", "peerid", WEB),
    Call("`peerid-callback` code exchange", "peerid", WEB),
    Call("PeerID refresh (`PeerIDRefreshMiddleware`)", "peerid", WEB),
    Call("`pi-payment-approve`: fetch", "pi", WEB),
    Call("`pi-payment-approve`: approve", "pi", WEB),
    Call("`pi-payment-complete`: fetch", "pi", WEB),
    Call("`pi-payment-complete`: complete", "pi", WEB),
    Call("`pi-payment-cancel`: fetch", "pi", WEB),
    Call("`pi-payment-cancel`: cancel", "pi", WEB),
    Call("`pi-payment-incomplete`: fetch", "pi", WEB),
    Call("payout `pay`: platform create", "pi", LIBRARY),
    Call("payout `pay`: Horizon", "horizon", LIBRARY),
    Call("payout `pay`: platform complete", "pi", LIBRARY),
    Call("Pi `get_payment`", "pi", LIBRARY),
    Call("Pi `approve_payment`", "pi", LIBRARY),
    Call("Pi `complete_payment`", "pi", LIBRARY),
    Call("Pi `cancel_payment`", "pi", LIBRARY),
    Call("Pi `incomplete_server_payments`", "pi", LIBRARY),
    Call("`peerid_operations`", "peerid", LIBRARY),
    Call("`piauth_safe_authorize`", "safe", COMMAND),
    Call("`piauth_safe_status`", "safe", COMMAND),
    Call("`piauth_safe_revoke`", "safe", COMMAND),
]

#: Fault classes, in table order: (key, column heading).
FAULTS: list[tuple[str, str]] = [
    ("refused", "connection refused"),
    ("hang", "no answer"),
    ("trickle_headers", "headers trickle"),
    ("trickle_body", "body trickles"),
    ("reset", "reset mid-body"),
    ("short", "Content-Length > body"),
    ("truncated", "truncated chunks"),
    ("500", "500"),
    ("502", "502"),
    ("503", "503"),
    ("504", "504"),
    ("418", "418 text"),
    ("html", "200 HTML"),
    ("wrong_shape", "200 wrong-shape JSON"),
    ("deep", "200 deeply nested JSON"),
    ("oversized", "oversized, with length"),
    ("oversized_streamed", "oversized, no length"),
    ("redirect", "302 elsewhere"),
]

#: Cells that differ from their row's outcome, and why.
#: ``GET /auth`` and ``DELETE /auth`` answer with a status only: their body is not read.
OVERRIDES: dict[tuple[str, str], str] = {
    (call, fault): STATUS_ONLY
    for call in ("`piauth_safe_status`", "`piauth_safe_revoke`")
    for fault in ("html", "wrong_shape", "deep")
}


def expected(call: Call, fault: str) -> str:
    return OVERRIDES.get((call.name, fault), call.outcome)


def cases() -> list[tuple[Call, str]]:
    return [(call, fault) for call in CALLS for fault, _heading in FAULTS]


def markdown_table() -> str:
    """The matrix as a Markdown table: rows are calls, columns are faults."""
    lines = ["| upstream call | " + " | ".join(h for _k, h in FAULTS) + " |",
             "| --- | " + " | ".join("---" for _ in FAULTS) + " |"]
    for call in CALLS:
        lines.append(f"| {call.name} | "
                     + " | ".join(expected(call, key) for key, _h in FAULTS) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
