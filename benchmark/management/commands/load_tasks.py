"""``manage.py load_tasks [FILE …]``: load task specs (all bundled ones by default)."""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from benchmark.services.tasks import load_tasks
from benchmark.specs import SpecError


class Command(BaseCommand):
    help = (
        "Validate and load task YAML files into immutable task versions, with their bundled "
        "human data. Without arguments: every file under benchmark/tasks/. Loading an "
        "unchanged file again creates nothing; an edited file creates a new version."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="*", type=Path, help="task YAML files (default: all)")

    def handle(self, *args, **options):
        started = time.perf_counter()
        files = options["files"] or None
        for path in files or []:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
        try:
            results = load_tasks(files)
        except SpecError as exc:
            raise CommandError(f"invalid task spec, nothing loaded:\n{exc}") from None
        for r in results:
            state = f"new version {r.version.number}" if r.created else "unchanged"
            line = f"{r.version.task.slug}: {state} ({r.version.spec_hash[:12]}, {r.seconds:.1f} s)"
            for dataset in r.datasets_created:
                line += f"; human data {dataset.slug}: {dataset_size(dataset)}"
            self.stdout.write(line)
        created = sum(r.created for r in results)
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(results)} task file(s), {created} new version(s) "
                f"in {time.perf_counter() - started:.1f} s"
            )
        )


def dataset_size(dataset) -> str:
    """What a new human dataset holds, in words (its people may be unknown: norms, counts)."""
    if n_rows := dataset.norms.count():
        return f"{n_rows:,} norm rows"
    if n_items := dataset.item_distributions.count():
        return f"{n_items:,} item distributions"
    if dataset.n_participants is None:
        return "participants unknown"
    return f"{dataset.n_participants:,} participants"
