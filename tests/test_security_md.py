"""SECURITY.md names the test that proves each answer: every one it names must exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def named_tests() -> list[tuple[str, str | None]]:
    """(file, test or None) for every `tests/...py[::name]` and `::name` (the file last
    named in the same line) in SECURITY.md."""
    found = []
    for line in (ROOT / "SECURITY.md").read_text().splitlines():
        current = None
        for path, name in REFERENCE.findall(line):
            current = path or current
            if current and (path or name):
                found.append((current, name or None))
    return found


def test_every_test_security_md_names_exists():
    named = named_tests()
    assert len(named) > 40
    missing = []
    for path, name in named:
        source = ROOT / path
        if not source.exists() or (name and f"def {name}(" not in source.read_text()):
            missing.append(f"{path}::{name}" if name else path)
    assert missing == []
