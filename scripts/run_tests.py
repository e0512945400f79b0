"""Run the test suite: on PostgreSQL when it is reachable, then the embedded (SQLite) tests.

Prints which database the tests use. With ``GEPPETTO_REQUIRE_POSTGRES=1`` (CI) an
unreachable PostgreSQL is an error, not a silent fallback. pytest's "no tests ran"
exit (5) is turned into a failure so an empty selection can never pass.
"""

import os
import subprocess
import sys

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


def pytest(args: list[str], env: dict) -> int:
    """Run pytest in a subprocess; "no tests collected" counts as a failure."""
    code = subprocess.call([sys.executable, "-m", "pytest", *args], env=env)
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
    # The embedded mode's own database: tests marked `embedded` also run on SQLite.
    print("== embedded-mode tests on SQLite")
    sqlite_env = {k: v for k, v in env.items() if k != "DATABASE_URL"}
    return pytest(["-m", "embedded", *args], sqlite_env)


if __name__ == "__main__":
    sys.exit(main())
