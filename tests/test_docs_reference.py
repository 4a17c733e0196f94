"""The reference pages keep up with the code: every PIAUTH key and every system check id
the package defines has its row."""

import re
from pathlib import Path

from django_piauth.conf import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_settings_reference():
    page = (ROOT / "docs" / "reference" / "settings.md").read_text()
    missing = [key for key in DEFAULTS if f"| `{key}` |" not in page]
    assert missing == []


def test_every_check_id_is_in_the_checks_reference():
    source = "".join(path.read_text() for path in (ROOT / "django_piauth").glob("checks*.py"))
    ids = set(re.findall(r'id="(piauth\.[EW]\d{3})"', source))
    page = (ROOT / "docs" / "reference" / "checks.md").read_text()
    assert len(ids) > 20
    assert sorted(i for i in ids if f"`{i}`" not in page) == []
