"""``manage.py import_psych201 FILE``: import a Psych-201 JSONL file (.jsonl, .gz, .zip)."""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from benchmark.models import Task
from benchmark.services.datasets import import_psych201


class Command(BaseCommand):
    help = (
        "Validate a whole Psych-201 file, then import it as a human dataset in one "
        "transaction. Importing the same content again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="a .jsonl, .jsonl.gz or .zip file")
        parser.add_argument("--slug", help="dataset slug (default: from the file name)")
        parser.add_argument("--name", help="dataset name (default: the experiment)")
        parser.add_argument("--task", help="slug of the task the data belongs to")

    def handle(self, *args, file, slug, name, task, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        task_obj = None
        if task:
            task_obj = Task.objects.filter(slug=task).first()
            if task_obj is None:
                raise CommandError(f"no task {task!r}")
        started = time.perf_counter()
        try:
            dataset, created = import_psych201(
                source=file, file_name=file.name, slug=slug, name=name, task=task_obj
            )
        except (ValueError, OSError) as exc:  # Psych201Error is a ValueError
            raise CommandError(f"{file}: {exc}; nothing was imported") from None
        seconds = time.perf_counter() - started
        if not created:
            self.stdout.write(f"Already imported as dataset {dataset.slug} (same content)")
            return
        responses = sum(len(s) for s in dataset.transcripts.values_list("spans", flat=True))
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {dataset.n_participants:,} participants ({responses:,} responses) "
                f"into dataset {dataset.slug} in {seconds:.1f} s"
            )
        )
