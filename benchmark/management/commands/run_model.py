"""``manage.py run_model``: queue a model run from the command line, optionally wait for it."""

import time
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from benchmark.models import HumanDataset, ModelEndpoint, RunMode, RunState, Task
from benchmark.services.execution import execute_unit
from benchmark.services.progress import run_progress
from benchmark.services.runs import RunError, estimate_cost, queue_run


class Command(BaseCommand):
    help = (
        "Queue a run of ENDPOINT on TASK (its latest version). With --here the units are "
        "executed in this process (no worker needed) and progress is printed."
    )

    def add_arguments(self, parser):
        parser.add_argument("endpoint", help="endpoint name")
        parser.add_argument("task", help="task slug")
        parser.add_argument("--mode", default=RunMode.PARTICIPANT, choices=RunMode.values)
        parser.add_argument("--scoring", choices=["exact", "sampled"], default=None)
        parser.add_argument("--samples", type=int, default=1)
        parser.add_argument("--dataset", help="human dataset slug (likelihood, predict_individual)")
        parser.add_argument("--variant", choices=["neutral", "human"], default="neutral")
        parser.add_argument("--with-profile", action="store_true")
        parser.add_argument("--temperature", type=float, default=None)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--budget", type=Decimal, default=None, help="USD")
        parser.add_argument("--max-trials", type=int, default=None)
        parser.add_argument("--max-participants", type=int, default=None)
        parser.add_argument("--batch-size", type=int, default=10)
        parser.add_argument("--estimate", action="store_true", help="print the estimate only")
        parser.add_argument("--here", action="store_true", help="execute in this process")

    def handle(self, *args, **o):
        try:
            endpoint = ModelEndpoint.objects.get(name=o["endpoint"])
        except ModelEndpoint.DoesNotExist:
            raise CommandError(f"no endpoint named {o['endpoint']!r}") from None
        task = Task.objects.filter(slug=o["task"]).first()
        if task is None or task.latest_version is None:
            raise CommandError(f"no task {o['task']!r}: run `manage.py load_tasks` first")
        dataset = None
        if o["dataset"]:
            dataset = HumanDataset.objects.filter(slug=o["dataset"]).first()
            if dataset is None:
                raise CommandError(f"no human dataset {o['dataset']!r}")
        params = {} if o["temperature"] is None else {"temperature": o["temperature"]}
        common = {
            "endpoint": endpoint,
            "task_version": task.latest_version,
            "mode": o["mode"],
            "scoring_mode": o["scoring"],
            "samples": o["samples"],
            "dataset": dataset,
            "max_trials": o["max_trials"],
            "batch_size": o["batch_size"],
            "max_participants": o["max_participants"],
        }
        try:
            plan = estimate_cost(**common)
            self.stdout.write(
                f"Plan: {len(plan.units)} unit(s), ~{plan.calls:,} model call(s), "
                f"~{plan.input_tokens:,} input tokens, estimated cost {plan.cost_usd:.4f} USD"
            )
            if o["estimate"]:
                return
            run = queue_run(
                **common,
                prompt_variant=o["variant"],
                with_profile=o["with_profile"],
                params=params,
                seed=o["seed"],
                budget_usd=o["budget"],
            )
        except RunError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Queued run {run.pk} ({run.scoring_mode} scoring).")
        if not o["here"]:
            return
        started = time.perf_counter()
        for unit_id in run.units.order_by("index").values_list("pk", flat=True):
            for _ in range(3):  # our own attempt counter bounds this
                if execute_unit(unit_id) != "retry":
                    break
            p = run_progress(run)
            self.stdout.write(f"  {p.done}/{p.total} responses, {p.units_failed} unit(s) failed")
        run.refresh_from_db()
        self.stdout.write(
            f"Run {run.pk} {run.state} in {time.perf_counter() - started:.1f} s, "
            f"cost {run.cost_usd:.4f} USD" + (f"; {run.error}" if run.error else "")
        )
        if run.state != RunState.COMPLETED:
            raise CommandError(f"run {run.pk} ended {run.state}")
