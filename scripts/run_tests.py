"""Run the test suite: on PostgreSQL when it is reachable, then the embedded (SQLite) tests.

The embedded pass runs in a copy of the tree where ``../shared`` does not exist, as on a
fresh clone without it: it proves that the suite needs nothing beside the clone (tests
that read ``../shared/data`` skip there, and fail under ``CI=true`` in the main pass when
it is missing). Prints which database the tests use. With ``GEPPETTO_REQUIRE_POSTGRES=1`` (CI) an
unreachable PostgreSQL is an error, not a silent fallback. pytest's "no tests ran"
exit (5) is turned into a failure so an empty selection can never pass.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PG_URL = os.environ.get("GEPPETTO_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/geppetto")
NO_TESTS = 5


def postgres_version(url: str) -> str | None:
    """Server version string, or None when PostgreSQL cannot be reached."""
    import psycopg

    try:
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=3) as conn:
            return conn.execute("show server_version").fetchone()[0]
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL not reachable ({str(exc).strip().splitlines()[0]})")
        return None


ROOT = Path(__file__).resolve().parent.parent


def pytest(args: list[str], env: dict, cwd: Path = ROOT) -> int:
    """Run pytest in a subprocess; "no tests collected" counts as a failure."""
    code = subprocess.call([sys.executable, "-m", "pytest", *args], env=env, cwd=cwd)
    if code == NO_TESTS:
        print("pytest collected no tests: failing on purpose")
        return 1
    return code


def main() -> int:
    """Pick the database, run the suite, then the embedded tests on SQLite."""
    args = sys.argv[1:]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    version = postgres_version(PG_URL)
    if version:
        print(f"== tests on PostgreSQL {version} at {PG_URL}")
        env["DATABASE_URL"] = PG_URL
    elif os.environ.get("GEPPETTO_REQUIRE_POSTGRES") == "1":
        print("GEPPETTO_REQUIRE_POSTGRES=1 but PostgreSQL is not reachable: failing")
        return 1
    else:
        print("== tests on SQLite (start PostgreSQL on 127.0.0.1:5432 to test on it)")
        env.pop("DATABASE_URL", None)
    code = pytest(args, env)
    if code or not version:
        return code
    # The embedded mode's own database: tests marked `embedded` also run on SQLite, in a
    # copy of the tree with nothing beside it, with the tests that use ../shared/data.
    with tempfile.TemporaryDirectory(prefix="geppetto-alone-") as tmp:
        copy = Path(tmp) / "geppetto"
        copy_tree(copy)
        print(f"== embedded-mode tests on SQLite, in {copy} (no ../shared beside it)")
        alone = {
            k: v
            for k, v in env.items()
            if k not in {"DATABASE_URL", "CI", "GEPPETTO_SHARED_DATA", "GEPPETTO_VAR_DIR"}
        }
        return pytest(
            ["-m", "embedded or shared_data", "-p", "no:cacheprovider", *args], alone, copy
        )


def copy_tree(target: Path) -> None:
    """Copy the project's files (tracked and new, not ignored ones) to ``target``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


if __name__ == "__main__":
    sys.exit(main())
