"""Count the tests of user-caused errors (README "Reliability", "Bad input").

A test counts when its body, or a helper of its module that it calls,
asserts what tinyfake promises for bad input: exit code 2 from the CLI, one
error line (`one_line_error`-style helpers), or a raised UserError. The
count is of collected test items (each parametrization is one case).

    .venv/bin/python scripts/count_bad_input_tests.py [--list]
"""
from __future__ import annotations

import collections
import inspect
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSERTS = re.compile(r"main\([^\n]*\) == 2\b|returncode == 2|rc == 2|exit_code == 2|one_line|_one_line"
                     r"|raises\(\(?UserError")


class Counter:
    def __init__(self):
        self.hits: list[str] = []

    def pytest_collection_modifyitems(self, session, config, items):
        helpers: dict = {}
        for item in items:
            mod = item.module
            if mod not in helpers:
                helpers[mod] = {name for name, f in vars(mod).items()
                                if inspect.isfunction(f) and not name.startswith("test")
                                and ASSERTS.search(_source(f))}
            src = _source(item.function)
            if ASSERTS.search(src) or any(re.search(rf"\b{h}\(", src) for h in helpers[mod]):
                self.hits.append(item.nodeid)


def _source(f) -> str:
    try:
        return inspect.getsource(f)
    except (OSError, TypeError):
        return ""


def main() -> int:
    counter = Counter()
    pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", str(REPO / "tests")], plugins=[counter])
    by_file = collections.Counter(n.split("::")[0] for n in counter.hits)
    if "--list" in sys.argv:
        for name in counter.hits:
            print(name)
    for f, n in by_file.most_common():
        print(f"{n:4d}  {f}")
    print(f"{len(counter.hits)} tests of user-caused errors in {len(by_file)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
