"""Build an alignment report from runs, in this process, with a progress bar."""

import shutil
import sys

from django.core.management.base import BaseCommand, CommandError

from benchmark.models import HumanDataset, ModelRun
from scoring.services import (
    SECTION_KINDS,
    ReportError,
    build_report,
    create_report,
    report_path,
)


class Command(BaseCommand):
    help = (
        "Build an alignment report from runs (ids) and optional human datasets (slugs); "
        "prints where the ZIP is."
    )

    def add_arguments(self, parser):
        parser.add_argument("runs", nargs="+", type=int, help="run ids")
        parser.add_argument("--dataset", action="append", default=[], help="human dataset slug")
        parser.add_argument("--section", action="append", choices=SECTION_KINDS, default=None)
        parser.add_argument("--metric", choices=["js", "tv", "w1"], default="js")
        parser.add_argument("--resamples", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--confidence", type=float, default=0.95)
        parser.add_argument("--pi-orient", default="", help="task:scale, or -task:scale")
        parser.add_argument("--title", default="")
        parser.add_argument("-o", "--output", help="also copy the ZIP here")

    def handle(self, *args, **opts):
        runs = list(ModelRun.objects.filter(pk__in=opts["runs"]))
        missing = sorted(set(opts["runs"]) - {r.pk for r in runs})
        if missing:
            raise CommandError(f"no run with id {missing}")
        datasets = []
        for slug in opts["dataset"]:
            dataset = HumanDataset.objects.filter(slug=slug).first()
            if dataset is None:
                raise CommandError(f"no human dataset {slug!r}")
            datasets.append(dataset)
        params = {
            "metric": opts["metric"],
            "resamples": opts["resamples"],
            "seed": opts["seed"],
            "confidence": opts["confidence"],
            "pi_orient": opts["pi_orient"],
        }
        try:
            report = create_report(
                runs=runs,
                datasets=datasets,
                sections=opts["section"],
                params=params,
                title=opts["title"],
                enqueue=False,
            )
            report = build_report(report=report, progress=self._bar)
        except ReportError as exc:
            raise CommandError(str(exc)) from exc
        sys.stderr.write("\n")
        path = report_path(report)
        if opts["output"]:
            shutil.copyfile(path, opts["output"])
            path = opts["output"]
        self.stdout.write(f"report {report.pk}: {path}")

    def _bar(self, share: float, step: str) -> None:
        filled = int(share * 30)
        sys.stderr.write(f"\r[{'#' * filled}{' ' * (30 - filled)}] {share * 100:5.1f}% {step:<50}")
        sys.stderr.flush()
