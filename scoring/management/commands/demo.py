"""``manage.py demo``: bundled models through the run queue, a report, three lines.

``make demo`` migrates, loads the bundled tasks and calls this. It converts the bundled
models it needs (once), queues their runs (`scoring.demo`), waits for the queue with a
progress line every few seconds, builds a report on the ``default`` queue against the
shipped human data, and prints where the ZIP is and what it says.
"""

import os
import resource
import shutil
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from benchmark.local_models import LOCAL_MODELS, ensure_local_endpoint
from benchmark.models import ModelEndpoint
from scoring import demo
from scoring.services import report_path


class Command(BaseCommand):
    help = (
        "End to end: queue the bundled model(s) on ipip-big5-50 (participant, both prompt "
        "variants; population prediction), choices13k and a Psych-201 likelihood run, wait, "
        "build a report against the shipped human data and print where it is."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--models",
            default=os.environ.get("DEMO_MODELS") or "smollm2",
            help=f"comma-separated bundled models ({', '.join(LOCAL_MODELS)}); "
            "default $DEMO_MODELS or smollm2",
        )
        parser.add_argument(
            "--endpoint",
            action="append",
            default=[],
            help="use this existing endpoint instead of the bundled models (repeatable)",
        )
        parser.add_argument("--items", type=int, default=None, help="first N items per task")
        parser.add_argument(
            "--participants",
            type=int,
            default=50,
            help="transcripts in the likelihood run (default the first 50 of 301; 0 = all)",
        )
        parser.add_argument("--resamples", type=int, default=1000)
        parser.add_argument(
            "--predict-items",
            type=int,
            default=10,
            help="items in the population prediction (default the first 10; 0 = all)",
        )
        parser.add_argument("--predict-samples", type=int, default=2)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--threads", type=int, default=1, help="embedded worker threads")
        parser.add_argument("--every", type=float, default=10.0, help="seconds between lines")
        parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds")
        parser.add_argument("-o", "--output", help="also copy the ZIP here")

    def handle(self, *args, **o):
        started = time.perf_counter()

        def say(text: str) -> None:
            # Each line as it happens, also when stdout is a file or a pipe (a log).
            self.stdout.write(text)
            self.stdout.flush()

        for name, value in (("--items", o["items"]), ("--threads", o["threads"])):
            if value is not None and value < 1:
                raise CommandError(f"{name} must be at least 1")
        for name in ("participants", "predict_items"):
            if o[name] < 0:
                raise CommandError(f"--{name.replace('_', '-')} must be 0 (all) or more")
        keys = self._model_keys(o)
        try:
            demo.check_ready()
        except demo.DemoError as exc:
            raise CommandError(str(exc)) from None
        endpoints = self._endpoints(o, keys, say)
        stop = self._start_worker(o["threads"], say)
        try:
            runs = demo.queue_demo_runs(
                endpoints=endpoints,
                max_items=o["items"],
                participants=o["participants"] or None,
                predict_items=o["predict_items"] or None,
                predict_samples=o["predict_samples"],
                seed=o["seed"],
                say=say,
            )
            say(f"Waiting for {len(runs)} runs (a line every {o['every']:.0f} s)…")
            demo.wait_for_runs(runs, say=say, every=o["every"], timeout=o["timeout"])
            report = demo.request_report(runs=runs, resamples=o["resamples"], seed=o["seed"])
            say(f"Building report {report.pk} ({o['resamples']} resamples)…")
            report = demo.wait_for_report(report, say=say, every=o["every"], timeout=o["timeout"])
            lines = demo.summary_lines(demo.report_summary(report))
        except demo.DemoError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if stop is not None:
                stop()
        path = report_path(report)
        if o["output"]:
            shutil.copyfile(path, o["output"])
            path = o["output"]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        say("")
        say(f"Report {report.pk}: {path}")
        for line in lines:
            say(f"  {line}")
        say(f"Done in {time.perf_counter() - started:.0f} s, peak memory {peak:.0f} MB.")

    def _model_keys(self, o) -> list[str]:
        """The bundled models asked for (none when existing endpoints are named)."""
        if o["endpoint"]:
            found = set(ModelEndpoint.objects.filter(name__in=o["endpoint"]).values_list("name"))
            missing = [n for n in o["endpoint"] if (n,) not in found]
            if missing:
                raise CommandError(f"no endpoint named {', '.join(map(repr, missing))}")
            return []
        keys = [k.strip() for k in o["models"].split(",") if k.strip()]
        unknown = [k for k in keys if k not in LOCAL_MODELS]
        if unknown or not keys:
            raise CommandError(
                f"unknown model(s) {unknown or keys}; DEMO_MODELS / --models takes a "
                f"comma-separated list of {', '.join(LOCAL_MODELS)}"
            )
        return keys

    def _endpoints(self, o, keys, say) -> list[ModelEndpoint]:
        if o["endpoint"]:
            return [ModelEndpoint.objects.get(name=n) for n in o["endpoint"]]
        endpoints = []
        for key in keys:
            try:
                endpoint, _ = ensure_local_endpoint(key, progress=self.stdout.isatty(), say=say)
            except RuntimeError as exc:
                raise CommandError(str(exc)) from None
            say(f"Endpoint {endpoint.name}: {endpoint.model} (revision {endpoint.revision})")
            endpoints.append(endpoint)
        return endpoints

    def _start_worker(self, threads: int, say):
        """The embedded mode's in-process worker, as `manage.py serve` starts it."""
        if settings.BROKER_URL:
            say(
                "BROKER_URL is set: the runs and the report go to the workers started with "
                "`manage.py rundramatiq` (queues local and default)."
            )
            return None
        from benchmark.services.execution import close_runners
        from benchmark.services.runs import reconcile_runs
        from config.broker import start_embedded_worker, start_reconcile_loop, stop_embedded_worker

        start_embedded_worker(threads)
        reconcile_runs()  # units left open by an earlier process lost their messages with it
        event = threading.Event()
        start_reconcile_loop(event)
        say(f"Embedded mode: in-process worker with {threads} thread(s).")

        def stop():
            event.set()
            stop_embedded_worker()
            close_runners()

        return stop
