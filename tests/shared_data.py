"""Files from ``../shared/data`` that the project does not ship (licences, size).

Only tests that need such a file use it, through `shared_file`: without ``../shared`` the
test is skipped on a developer's clone and fails under ``CI=true``, where it must be
there. `.ci/run` also runs the suite once with ``../shared`` absent (scripts/run_tests.py).
"""

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("GEPPETTO_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def shared_file(*parts: str) -> Path:
    """The path of a shared data file; skips (locally) or fails (CI) when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must have ../shared beside the clone")
        pytest.skip(f"{path} is not here (../shared/data is not beside this clone)")
    return path
