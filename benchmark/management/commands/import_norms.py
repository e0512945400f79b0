"""``manage.py import_norms TASK FILE``: published norms of your own for a loaded task."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from benchmark.norms import NormsError
from benchmark.services.norms import import_norms_csv


class Command(BaseCommand):
    help = (
        "Store a norms CSV (scale,group,statistic,mean,sd,n,source) as a 'norms' human "
        "dataset of a questionnaire task that is already loaded: for instruments whose "
        "licence keeps them out of the bundle, load your own task file with load_tasks, "
        "then its norms with this. The file is checked first; nothing is written if any "
        "row is refused; importing the same file again creates nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("task", help="the task's slug")
        parser.add_argument("file", type=Path, help="the norms CSV")
        parser.add_argument("--slug", default="", help="dataset slug (default <task>-<stem>)")
        parser.add_argument("--name", default="", help="dataset name")
        parser.add_argument("--licence", default="", help="the licence of the norms")
        parser.add_argument("--provenance", default="", help="where the norms come from")

    def handle(self, *args, **options):
        path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            dataset, created = import_norms_csv(
                task_slug=options["task"],
                path=path,
                slug=options["slug"],
                name=options["name"],
                licence=options["licence"],
                provenance=options["provenance"],
            )
        except NormsError as exc:
            raise CommandError(f"norms not imported:\n{exc}") from None
        rows = dataset.norms.count()
        state = "imported" if created else "already there"
        self.stdout.write(f"{dataset.slug}: {rows} norm row(s) for {options['task']}, {state}")
