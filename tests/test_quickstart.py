"""The quickstart, pasted: a fresh ``django-admin startproject``, the page's file blocks
written (or appended) where their titles say, its commands run. The project's checks are
clean, its migrations apply and the page's own tests pass."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "quickstart.md"
BLOCK = re.compile(r'^```(\w+)(?: title="([^"]+)")?\n(.*?)^```$', re.S | re.M)
APPEND = " (add at the end)"
BIN = Path(sys.executable).parent


def blocks() -> list[tuple[str, str | None, str]]:
    return [(m[1], m[2], m[3]) for m in BLOCK.finditer(PAGE.read_text())]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "PIAUTH_", "PYTEST_"))}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The quickstart's project, built by following the page."""
    here = tmp_path_factory.mktemp("quickstart")
    commands = "\n".join(body for language, _title, body in blocks() if language == "bash")
    assert "django-admin startproject mysite" in commands and "cd mysite" in commands
    run([str(BIN / "django-admin"), "startproject", "mysite"], here)
    project = here / "mysite"
    for _language, title, body in blocks():
        if title is None:
            continue
        path = project / title.removesuffix(APPEND)
        if title.endswith(APPEND):
            assert path.exists(), f"{path} should have come from startproject"
            path.write_text(path.read_text() + "\n" + body)
        else:
            path.write_text(body)
    return project


def test_every_titled_block_was_used_and_the_page_names_its_commands():
    titles = [title for _l, title, _b in blocks() if title]
    assert {"mysite/settings.py (add at the end)", "mysite/views.py", "mysite/urls.py",
            "pytest.ini", "conftest.py", "test_whoami.py"} <= set(titles)
    commands = "\n".join(body for language, _t, body in blocks() if language == "bash")
    for command in ("pip install django-piauth", "python manage.py migrate", "pytest"):
        assert command in commands


def test_the_project_checks_clean_and_migrates(project):
    checked = run([sys.executable, "manage.py", "check"], project)
    assert "System check identified no issues" in checked.stdout, checked.stdout
    migrated = run([sys.executable, "manage.py", "migrate", "--noinput"], project)
    assert "Applying django_piauth.0001_initial... OK" in migrated.stdout


def test_the_pages_tests_pass(project):
    result = run([str(BIN / "pytest"), "-q", "-p", "no:cacheprovider"], project)
    assert "2 passed" in result.stdout, result.stdout
