"""``manage.py import_psychobench FILE``: PsychoBench's questionnaires → tasks with norms."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from benchmark.norms import NormsError
from benchmark.services.norms import import_psychobench
from benchmark.specs import SpecError


class Command(BaseCommand):
    help = (
        "Import PsychoBench's questionnaires.json: one questionnaire task per instrument, "
        "with its human norms as a 'norms' dataset. The whole file is checked first and "
        "written in one transaction; importing it again creates nothing. The file is "
        "research-use only, so Geppetto does not bundle it: point this at your copy."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="PsychoBench's questionnaires.json")

    def handle(self, *args, **options):
        path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            result = import_psychobench(path=path)
        except (NormsError, SpecError) as exc:
            raise CommandError(f"invalid PsychoBench file, nothing imported:\n{exc}") from None
        for (version, created), (dataset, new_norms) in zip(
            result.versions, result.datasets, strict=True
        ):
            state = f"new version {version.number}" if created else "unchanged"
            norms = dataset.norms.count()
            self.stdout.write(
                f"{version.task.slug}: {state}, {version.items.count()} items; "
                f"norms {dataset.slug}: {norms} row(s){'' if new_norms else ' (already there)'}"
            )
        for name, reason in result.skipped:
            self.stdout.write(f"{name}: skipped ({reason})")
        created = sum(c for _, c in result.versions)
        self.stdout.write(
            self.style.SUCCESS(f"{len(result.versions)} instrument(s), {created} new version(s)")
        )
