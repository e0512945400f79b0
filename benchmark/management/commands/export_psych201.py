"""``manage.py export_psych201 DATASET``: write a human dataset as Psych-201 JSONL."""

import gzip
import io
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from benchmark.models import HumanDataset
from benchmark.services.datasets import export_psych201


class Command(BaseCommand):
    help = "Write a dataset as Psych-201 JSONL to stdout or a file (a .gz name compresses)."

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="dataset slug")
        parser.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")

    def handle(self, *args, dataset, output, **options):
        obj = HumanDataset.objects.filter(slug=dataset).first()
        if obj is None:
            raise CommandError(f"no dataset {dataset!r}")
        try:
            count = self._export(obj, output)
        except (ValueError, OSError) as exc:
            raise CommandError(f"{dataset}: {exc}") from None
        where = output or "stdout"
        self.stderr.write(f"{count:,} participants written to {where}")

    def _export(self, dataset, output: Path | None) -> int:
        if output is None:
            return export_psych201(dataset=dataset, out=self.stdout)
        # Written beside the target and renamed at the end: a failed export leaves no
        # half file under the real name.
        partial = output.with_name(output.name + ".part")
        try:
            with partial.open("wb") as raw:
                # mtime=0: the same dataset always gives the same .gz bytes.
                binary = (
                    gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)
                    if output.suffix == ".gz"
                    else raw
                )
                with io.TextIOWrapper(binary, encoding="utf-8", newline="\n") as text:
                    count = export_psych201(dataset=dataset, out=text)
            partial.replace(output)
        finally:
            partial.unlink(missing_ok=True)
        return count
