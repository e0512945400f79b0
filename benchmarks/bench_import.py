"""Import speed: Psych-201 files and `load_tasks`, against a row-by-row import.

Run: .venv/bin/python benchmarks/bench_import.py
Uses a throwaway SQLite database (embedded mode) unless DATABASE_URL is set, in which
case a throwaway PostgreSQL database is created next to it. Prints a table.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("GEPPETTO_VAR_DIR", tempfile.mkdtemp(prefix="geppetto-bench-"))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

DATA = ROOT / "benchmark" / "data" / "psych201"
FILES = ["thoma2025riskychoice.jsonl.gz", "franke2024bayesian.jsonl.gz", "dezfouli2019.jsonl.zip"]


def naive_import(path: Path) -> int:
    """The obvious way: parse each line and save each transcript on its own."""
    from benchmark import psych201
    from benchmark.models import HumanDataset
    from benchmark.services.datasets import transcript_from

    records = list(psych201.iter_records(path, path.name))
    with transaction.atomic():
        dataset = HumanDataset.objects.create(
            slug=f"naive-{path.stem}",
            name="naive",
            source="imported",
            content_sha256=f"naive-{path.name}",
        )
        for r in records:
            transcript_from(dataset, r).save()
    return len(records)


def main():
    from benchmark.services.datasets import import_psych201

    old = setup_databases(verbosity=0, interactive=False)
    try:
        print(f"database: {connection.vendor}")
        print(f"{'step':56} {'ours (s)':>9} {'row by row (s)':>15} {'speed-up':>9}")
        for name in FILES:
            path = DATA / name
            started = time.perf_counter()
            dataset, _ = import_psych201(source=path, file_name=name)
            ours = time.perf_counter() - started
            started = time.perf_counter()
            naive_import(path)
            naive = time.perf_counter() - started
            label = f"import {name} ({dataset.n_participants} participants)"
            print(f"{label:56} {ours:9.2f} {naive:15.2f} {naive / ours:8.1f}x")
        started = time.perf_counter()
        call_command("load_tasks", stdout=open(os.devnull, "w"))  # noqa: SIM115
        print(
            f"{'load_tasks (all bundled tasks, first time)':56} "
            f"{time.perf_counter() - started:9.2f}"
        )
        started = time.perf_counter()
        call_command("load_tasks", stdout=open(os.devnull, "w"))  # noqa: SIM115
        print(f"{'load_tasks (again: nothing to do)':56} {time.perf_counter() - started:9.2f}")
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
