"""Only tests/shared_data.py may locate ../shared: every other test uses what the clone ships.

A test that opens ../shared by itself fails on a fresh clone without it (as four
Psych-201 tests once did); `.ci/run` also runs the suite with ../shared absent.
"""

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_test_builds_a_path_to_shared_by_itself():
    offenders = []
    for path in TESTS.rglob("*.py"):
        if path.name in {"shared_data.py", Path(__file__).name}:
            continue
        text = path.read_text()
        # A path built from a "shared" string, or ../shared in a string literal.
        if re.search(r"[\"']shared[\"']|[\"'][^\"'\n]*\.\./shared|GEPPETTO_SHARED_DATA", text):
            offenders.append(str(path.relative_to(TESTS)))
    assert offenders == []
