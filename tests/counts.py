"""What the suite ran, counted for the report: browser steps, schema cases, property examples.

A test calls ``counted("browser steps")`` once per step that passed (or ``counted(kind, n)``);
``tests/conftest.py`` prints the totals at the end of the run, so the test command's output
says how much the browser suite, the schema fuzzer and the property tests really exercised.
"""

from collections import Counter

totals: Counter[str] = Counter()


def counted(kind: str, n: int = 1) -> None:
    totals[kind] += n
