"""The README is the PyPI page: it opens with the two commands, and every link into the
documentation site names a page the site builds (``docs/<path>.md``)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_it_opens_with_the_two_commands():
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split()[0] for line in first_block.splitlines()] == ["scripts/demo",
                                                                        "scripts/test"]
    assert README.index("```bash") < README.index("## ")


def test_every_docs_link_names_a_page():
    pages = re.findall(r"https://django-piauth\.readthedocs\.io/en/latest/([\w/-]+?)/?\)",
                       README)
    assert len(pages) >= 10
    for page in pages:
        assert (ROOT / "docs" / f"{page}.md").exists() or (
            ROOT / "docs" / page / "index.md").exists(), page


def test_relative_links_exist():
    for target in re.findall(r"\]\((?!https?://|#)([^)]+)\)", README):
        assert (ROOT / target).exists(), target
