"""A Griffe extension for the API reference: reads django-piauth's docstrings as written.

The package's docstrings are prose in reStructuredText habits. Before mkdocstrings
renders them as Markdown, this extension:

- turns Sphinx roles (:class:`~a.b.C`, :func:`.x`, :meth:`m`, ...) into code spans
  (`C`, `django_piauth.x`, `m`): Markdown has no roles, and they would show as text;
- turns a paragraph that ends with ``::`` before an indented block into one ending
  with ``:`` (the indented block is a code block in Markdown too);
- puts a blank line before a list that follows a paragraph line directly (Markdown
  needs one, reStructuredText readers forgive it);
- gives an attribute without a docstring the ``#:`` comment lines above it (Sphinx's
  convention, which ``django_piauth.signals`` and others use), since Griffe reads only
  string docstrings.

It changes the docs only, never the code. Configured in ``mkdocs.yml`` under the
python handler's ``extensions``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):`([^`]+)`")
_BULLET = re.compile(r"^\s*(?:[-*]|\d+\.)\s")


def _target(obj: griffe.Object, text: str) -> str:
    text = text.strip()
    if text.startswith("~"):
        return text[1:].rsplit(".", 1)[-1]
    if text.startswith("."):
        module = obj if obj.is_module else obj.module
        is_package = getattr(module, "is_package", False)
        package = module.path if is_package else module.path.rsplit(".", 1)[0]
        parts = package.split(".")
        dots = len(text) - len(text.lstrip("."))
        base = parts[: len(parts) - (dots - 1)] if dots > 1 else parts
        return ".".join([*base, text.lstrip(".")])
    return text


def convert(obj: griffe.Object, value: str) -> str:
    value = _ROLE.sub(lambda match: f"``{_target(obj, match[1])}``", value)
    out: list[str] = []
    in_list = False
    for line in value.split("\n"):
        stripped = line.strip()
        if _BULLET.match(line):
            if not in_list and out and out[-1].strip():
                out.append("")
            in_list = True
        elif not stripped or not line[:1].isspace():
            in_list = False  # a blank line, or a paragraph line that is not indented
        if stripped.endswith("::") and not stripped.startswith("::"):
            line = line.rstrip()[:-1]
        out.append(line)
    return "\n".join(out)


def _comment_docstring(obj: griffe.Attribute) -> str | None:
    """The ``#:`` comment lines right above the attribute, if any."""
    if not obj.lineno:
        return None
    try:
        lines = obj.lines_collection[obj.filepath]  # type: ignore[index]
    except (KeyError, TypeError, griffe.BuiltinModuleError):
        return None
    found: list[str] = []
    index = obj.lineno - 2
    while index >= 0 and lines[index].strip().startswith("#:"):
        found.insert(0, lines[index].strip()[2:].strip())
        index -= 1
    return "\n".join(found) or None


class RstRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()
        self._walk(pkg, seen)

    def _walk(self, obj: griffe.Object, seen: set[int]) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if obj.is_attribute and obj.docstring is None:
            comment = _comment_docstring(obj)  # type: ignore[arg-type]
            if comment:
                obj.docstring = griffe.Docstring(comment, lineno=obj.lineno, parent=obj)
        if obj.docstring is not None:
            obj.docstring.value = convert(obj, obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)  # type: ignore[arg-type]
