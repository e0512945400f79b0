"""How far a run is: responses, units, rate, time left, cost, and the state in words."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from benchmark.models import ModelRun, Provider, RunState, UnitState
from benchmark.services.runs import ACTIVE_RUN_STATES

LOCAL_PROVIDERS = (Provider.HF, Provider.VLLM)


@dataclass(frozen=True)
class Progress:
    """How far a run is, for the admin and the API.

    ``rate_per_min`` counts the responses written since the run last (re)started,
    from the first of them: the time before it (loading a model, waiting in the queue)
    and the work done before a resume do not distort it. While fewer than two responses
    exist in that stretch, ``starting`` is true and there is no time left estimate.
    """

    done: int
    total: int
    units_done: int
    units_failed: int
    units_total: int
    errors: list[str]
    rate_per_min: float | None
    eta_seconds: float | None
    cost_usd: Decimal
    starting: bool = False


def run_progress(run: ModelRun) -> Progress:
    """Responses done of expected, unit states, rate, time left and cost of a run."""
    units = run.units.aggregate(
        total=Sum("expected"),
        n=Count("pk"),
        done=Count("pk", filter=Q(state=UnitState.DONE)),
        failed=Count("pk", filter=Q(state=UnitState.FAILED)),
    )
    done = run.responses.count()
    total = units["total"] or 0
    errors = list(run.units.exclude(last_error="").values_list("last_error", flat=True)[:5])
    rate = eta = None
    starting = False
    since = run.resumed or run.started
    if since:
        stretch = run.responses.filter(created__gte=since).aggregate(
            n=Count("pk"), first=Min("created"), last=Max("created")
        )
        end = run.finished or timezone.now()
        seconds = (end - stretch["first"]).total_seconds() if stretch["first"] else 0
        if stretch["n"] >= 2 and seconds > 0:
            rate = (stretch["n"] - 1) / (seconds / 60)
            if not run.finished and total > done:
                eta = (total - done) / rate * 60
        starting = run.state in ACTIVE_RUN_STATES and rate is None
    elif run.state in ACTIVE_RUN_STATES:
        starting = True
    return Progress(
        done=done,
        total=total,
        units_done=units["done"],
        units_failed=units["failed"],
        units_total=units["n"],
        errors=errors,
        rate_per_min=rate,
        eta_seconds=eta,
        cost_usd=run.cost_usd,
        starting=starting,
    )


def run_status(run: ModelRun, progress: Progress | None = None) -> str:
    """The run's state in words: "Completed with 2 failed units" rather than "Completed"."""
    if run.state == RunState.COMPLETED:
        failed = (progress or run_progress(run)).units_failed
        if failed:
            return f"Completed with {failed} failed unit{'s' if failed != 1 else ''}"
    return run.get_state_display()


def time_left_text(run: ModelRun, progress: Progress) -> str:
    """Time left in words; while starting, what the run is waiting for instead of a guess."""
    if progress.starting:
        if run.endpoint.provider in LOCAL_PROVIDERS:
            return "loading the model"
        return "waiting for the first answers"
    if progress.eta_seconds is None:
        return "–"
    if progress.eta_seconds < 90:
        return f"{progress.eta_seconds:.0f} s"
    return f"{progress.eta_seconds / 60:.1f} min"
