"""Model runs: queueing, executing work units, cost, budget, cancel, retry, reconcile.

The database is the source of truth. A broker message only says "work on unit N";
`execute_unit` takes a lease on the unit, skips what already has responses, writes
each response with an upsert and can run twice without harm. Our own attempt
counter bounds retries (a SIGKILLed worker's redelivered message does not count
against dramatiq's retries). `reconcile_runs` re-enqueues units whose lease ran out.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from benchmark.models import (
    Beat,
    ModelEndpoint,
    ModelRun,
    RunMode,
    RunState,
    ScoringMode,
    Transcript,
    UnitState,
    WorkUnit,
)
from benchmark.rendering import spec_items
from benchmark.runners.options import EXACT_DEFINITION
from benchmark.runners.population import NUMBERS, POPULATION_EXACT_DEFINITION
from benchmark.specs import spec_from_json

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


def lease() -> timedelta:
    """How long a worker holds a unit after its last sign of life (``UNIT_LEASE_SECONDS``)."""
    return timedelta(seconds=settings.UNIT_LEASE_SECONDS)


ACTIVE_RUN_STATES = (RunState.QUEUED, RunState.RUNNING)
CHARS_PER_TOKEN = 4  # for estimates only; actual counts come from the provider

HUMAN_PREAMBLE = (
    "You are taking part in a psychology study. Respond as a typical human participant would.\n\n"
)
POPULATION_QUESTION = (
    "\n\nInstead of answering yourself, estimate how people answer this question. "
    "For each option ({options}) give the percentage of people who choose it, "
    "in the form {example}. The percentages must add up to 100.\nAnswer:"
)


class RunError(ValueError):
    """A run that cannot be queued as asked; the message says why."""


# --- prompts --------------------------------------------------------------------------


def prompt_template_text(version, variant: str, mode: str, scoring: str = "") -> str:
    """Everything that shapes the prompts of a run; its hash is recorded on the run.

    For exact scoring, the definition of an option's probability (participants) or of
    a predicted share (population predictions) is part of it: a run scored under another
    definition has another hash.
    """
    spec = version.spec
    parts = [
        variant,
        HUMAN_PREAMBLE if variant == "human" else "",
        spec.get("instructions", ""),
        json.dumps(spec.get("prompt"), sort_keys=True),
        POPULATION_QUESTION if mode == RunMode.PREDICT_POPULATION else "",
    ]
    if definition := exact_definition(mode, scoring):
        parts.append(definition)
    return "\n".join(parts)


def exact_definition(mode: str, scoring: str) -> str:
    """What an exact answer of a run in this mode is (empty when the run is not exact)."""
    if scoring != ScoringMode.EXACT or mode == RunMode.LIKELIHOOD:
        return ""
    return POPULATION_EXACT_DEFINITION if mode == RunMode.PREDICT_POPULATION else EXACT_DEFINITION


def preamble_for(run: ModelRun) -> str:
    """The text put before every prompt of a run (its prompt variant)."""
    return HUMAN_PREAMBLE if run.prompt_variant == "human" else ""


def population_prompt(prompt_text: str, options: list[str]) -> str:
    """Turn an item prompt (ending with ``<<``) into a question about the population."""
    body = prompt_text.removesuffix("<<").rstrip()
    example = ", ".join(f"{o}: x%" for o in options)
    return body + POPULATION_QUESTION.format(options=", ".join(options), example=example)


# --- queueing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The work a run would do, before it is queued."""

    units: list[tuple[list, int]]  # (payload, expected responses)
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


def endpoint_capabilities(endpoint: ModelEndpoint) -> frozenset[str]:
    """What the endpoint's runner can do, without loading the model.

    The runner class declares it; ``settings["capabilities"]`` narrows it for servers
    that offer less (e.g. an OpenAI-compatible server without echo log-probabilities).
    """
    from benchmark.runners import runner_class

    declared = frozenset(runner_class(endpoint.provider).capabilities)
    if override := endpoint.settings.get("capabilities"):
        return declared & frozenset(override)
    return declared


def _scoring_mode(endpoint: ModelEndpoint, mode: str, requested: str | None) -> str:
    can_score = "score" in endpoint_capabilities(endpoint)
    if mode == RunMode.PREDICT_POPULATION:
        # Sampled (stated percentages, parsed) unless exact is asked for: the exact path
        # scores 101 numbers per option, which an API bills as many calls.
        if requested == ScoringMode.EXACT and not can_score:
            raise RunError(f"{endpoint.name} gives no log-probabilities: use sampled scoring")
        return requested or ScoringMode.SAMPLED
    if mode == RunMode.LIKELIHOOD:
        if not can_score:
            raise RunError(f"{endpoint.name} cannot score log-probabilities: no likelihood runs")
        return ScoringMode.EXACT
    if requested == ScoringMode.EXACT and not can_score:
        raise RunError(f"{endpoint.name} gives no log-probabilities: use sampled scoring")
    return requested or (ScoringMode.EXACT if can_score else ScoringMode.SAMPLED)


def plan_run(
    *,
    endpoint: ModelEndpoint,
    task_version,
    mode: str,
    scoring_mode: str,
    samples: int,
    dataset=None,
    max_trials: int | None = None,
    batch_size: int = 10,
    max_participants: int | None = None,
    max_items: int | None = None,
) -> Plan:
    """Split a run into units and estimate its calls, tokens and cost.

    Raises:
        RunError: the task kind and the mode do not go together, or data is missing.
    """
    spec = spec_from_json(task_version.spec)
    per_call_out = 8 if scoring_mode == ScoringMode.SAMPLED else 0
    units: list[tuple[list, int]] = []
    prompt_chars = 0
    calls = 0
    if mode == RunMode.LIKELIHOOD:
        if dataset is None:
            raise RunError("a likelihood run needs a human dataset")
        ids = list(dataset.transcripts.exclude(text="").values_list("pk", flat=True))
        if max_participants:
            ids = ids[:max_participants]
        if not ids:
            raise RunError(f"dataset {dataset.slug} has no transcripts with text")
        for start in range(0, len(ids), batch_size):
            units.append((ids[start : start + batch_size], len(ids[start : start + batch_size])))
        # Every scoring runner reads a transcript's spans from one pass over its text.
        for text in Transcript.objects.filter(pk__in=ids).values_list("text", flat=True):
            calls += 1
            prompt_chars += len(text)
        return _plan(units, calls, prompt_chars, 0, endpoint)
    if spec.kind == "transcript":
        raise RunError("transcript tasks are scored by likelihood only")
    items = spec_items(spec)
    if max_items is not None and spec.kind != "sequential":
        if max_items < 1:
            raise RunError("max_items must be at least 1")
        items = items[:max_items]
    if spec.kind == "sequential":
        if mode != RunMode.PARTICIPANT:
            raise RunError("sequential tasks are played in participant mode")
        trials = min(max_trials or len(items), len(items))
        units = [([sample], trials) for sample in range(samples)]
        calls = samples * trials
        # The transcript grows: trial t's prompt holds t previous trials.
        avg_trial = 60
        prompt_chars = samples * (
            len(spec.instructions) * trials + avg_trial * trials * trials // 2
        )
        return _plan(units, calls, prompt_chars, calls * per_call_out, endpoint)
    keys = [i.key for i in items]
    n_samples = 1 if scoring_mode == ScoringMode.EXACT else samples
    if mode == RunMode.PREDICT_INDIVIDUAL:
        if dataset is None:
            raise RunError("a predict_individual run needs a human dataset with profiles")
        people = list(
            dataset.transcripts.exclude(answers={}).values_list("pk", flat=True)[
                : max_participants or 50
            ]
        )
        if not people:
            raise RunError(f"dataset {dataset.slug} has no item-level answers to predict")
        pairs = [f"{pid}:{key}" for pid in people for key in keys]
    else:
        pairs = keys
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        units.append((chunk, len(chunk) * n_samples))
    n_options = max(len(i.options) for i in items)
    per_item_calls = n_options if scoring_mode == ScoringMode.EXACT else n_samples
    if scoring_mode == ScoringMode.EXACT and mode == RunMode.PREDICT_POPULATION:
        per_item_calls = n_options * len(NUMBERS)  # every number 0-100 after each option
    calls = len(pairs) * per_item_calls
    avg_prompt = len(spec.instructions) + 120
    prompt_chars = calls * avg_prompt
    return _plan(units, calls, prompt_chars, calls * per_call_out, endpoint)


def _plan(units, calls, prompt_chars, out_tokens, endpoint) -> Plan:
    in_tokens = prompt_chars // CHARS_PER_TOKEN
    return Plan(units, calls, in_tokens, out_tokens, cost_of(endpoint, in_tokens, out_tokens))


def cost_of(endpoint: ModelEndpoint, input_tokens: int, output_tokens: int) -> Decimal:
    """USD for a number of tokens at the endpoint's prices."""
    million = Decimal(1_000_000)
    return (
        Decimal(input_tokens) * endpoint.price_input_per_mtok
        + Decimal(output_tokens) * endpoint.price_output_per_mtok
    ) / million


def estimate_cost(**kwargs) -> Plan:
    """The plan of a run that `queue_run` would create with the same arguments."""
    endpoint = kwargs["endpoint"]
    scoring = _scoring_mode(endpoint, kwargs["mode"], kwargs.pop("scoring_mode", None))
    return plan_run(scoring_mode=scoring, **kwargs)


@transaction.atomic
def queue_run(
    *,
    endpoint: ModelEndpoint,
    task_version,
    mode: str = RunMode.PARTICIPANT,
    scoring_mode: str | None = None,
    samples: int = 1,
    dataset=None,
    prompt_variant: str = "neutral",
    with_profile: bool = False,
    params: dict | None = None,
    seed: int = 0,
    budget_usd: Decimal | None = None,
    max_trials: int | None = None,
    batch_size: int = 10,
    max_participants: int | None = None,
    max_items: int | None = None,
    user=None,
) -> ModelRun:
    """Create a run and its work units, and enqueue the units once the transaction commits.

    Args:
        endpoint: the model to run.
        task_version: what it does.
        mode: participant, predict_population, predict_individual or likelihood.
        scoring_mode: exact (log-probabilities) or sampled; default exact when the runner can,
            except predict_population, sampled unless exact is asked for.
        samples: samples per item (sampled mode), or sessions played (sequential tasks).
        dataset: human transcripts (likelihood) or profiles (predict_individual).
        prompt_variant: ``neutral`` or ``human`` (respond as a typical human).
        with_profile: prepend each participant's profile (likelihood).
        params: decoding parameters (temperature, max_tokens).
        seed: seeds sampling and the answers drawn in sequential play.
        budget_usd: pause the run when its cost reaches this.
        max_trials: sequential tasks: play only the first N trials.
        batch_size: items per work unit.
        max_participants: cap on transcripts (likelihood, predict_individual).
        max_items: only the first N items of a questionnaire or choice task (a quick look).
        user: who queued it.

    Returns:
        The queued run.

    Raises:
        RunError: the endpoint cannot do what the run asks, or the inputs do not fit.
    """
    if samples < 1:
        raise RunError("samples must be at least 1")
    if prompt_variant not in {"neutral", "human"}:
        raise RunError("prompt_variant must be 'neutral' or 'human'")
    scoring = _scoring_mode(endpoint, mode, scoring_mode)
    plan = plan_run(
        endpoint=endpoint,
        task_version=task_version,
        mode=mode,
        scoring_mode=scoring,
        samples=samples,
        dataset=dataset,
        max_trials=max_trials,
        batch_size=batch_size,
        max_participants=max_participants,
        max_items=max_items,
    )
    template = prompt_template_text(task_version, prompt_variant, mode, scoring)
    params = dict(params or {})
    if definition := exact_definition(mode, scoring):
        params["exact_definition"] = definition
    run = ModelRun.objects.create(
        endpoint=endpoint,
        task_version=task_version,
        dataset=dataset,
        mode=mode,
        scoring_mode=scoring,
        prompt_variant=prompt_variant,
        prompt_hash=hashlib.sha256(template.encode()).hexdigest(),
        with_profile=with_profile,
        params=params,
        seed=seed,
        samples_per_item=samples,
        max_trials=max_trials,
        budget_usd=budget_usd,
        estimated_cost_usd=plan.cost_usd,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    WorkUnit.objects.bulk_create(
        [
            WorkUnit(run=run, index=i, payload=payload, expected=expected)
            for i, (payload, expected) in enumerate(plan.units)
        ]
    )
    _enqueue_on_commit(run, list(run.units.values_list("pk", flat=True)))
    return run


def _enqueue_on_commit(run: ModelRun, unit_ids: list[int]) -> None:
    """Send the units once the surrounding transaction commits (never before the rows exist)."""
    from benchmark import actors

    queue = run.endpoint.queue_name
    transaction.on_commit(lambda: [actors.send_unit(queue, unit_id) for unit_id in unit_ids])


# --- run control -------------------------------------------------------------------------


@transaction.atomic
def cancel_run(*, run: ModelRun) -> ModelRun:
    """Stop a run: pending units are cancelled; units in flight stop at their next item."""
    # NO KEY UPDATE: excludes every other run-level change, but not a worker inserting a
    # response, whose foreign key takes FOR KEY SHARE on the run while it holds its unit
    # (FOR UPDATE here, then this unit update, would wait for it in a circle).
    run = ModelRun.objects.select_for_update(no_key=True).get(pk=run.pk)
    if run.state in (RunState.COMPLETED, RunState.CANCELLED):
        return run
    run.units.filter(state__in=[UnitState.PENDING, UnitState.RUNNING]).update(
        state=UnitState.CANCELLED, lease_until=None
    )
    run.state = RunState.CANCELLED
    run.finished = timezone.now()
    run.save(update_fields=["state", "finished"])
    return run


@transaction.atomic
def resume_run(*, run: ModelRun, budget_usd: Decimal | None = None) -> ModelRun:
    """Continue a paused or cancelled run (optionally with a new budget); done work is kept."""
    run = ModelRun.objects.select_for_update(no_key=True).get(pk=run.pk)  # see cancel_run
    if budget_usd is not None:
        run.budget_usd = budget_usd
    if run.budget_usd is not None and run.cost_usd >= run.budget_usd:
        raise RunError(f"the run has spent {run.cost_usd} of its {run.budget_usd} USD budget")
    # A unit whose worker is alive keeps its lease and goes on; the others are free.
    units = run.units.filter(
        Q(state__in=[UnitState.PENDING, UnitState.CANCELLED])
        | Q(state=UnitState.RUNNING, lease_until__isnull=True)
        | Q(state=UnitState.RUNNING, lease_until__lt=timezone.now())
    )
    ids = list(units.values_list("pk", flat=True))
    units.update(state=UnitState.PENDING, lease_until=None, lease_token="")
    if ids or run.units.filter(state=UnitState.RUNNING).exists():
        run.state = RunState.QUEUED
        run.finished = None
        run.resumed = timezone.now()
        run.error = ""
    run.save(update_fields=["state", "finished", "budget_usd", "resumed", "error"])
    _enqueue_on_commit(run, ids)
    return run


def retryable_units(run: ModelRun):
    """The units `retry_failed` would queue again: failed ones, and those a failed run stopped."""
    states = [UnitState.FAILED]
    if run.state == RunState.FAILED:
        # The run failed (e.g. the endpoint could not be reached) and cancelled its open units.
        states.append(UnitState.CANCELLED)
    return run.units.filter(state__in=states)


@transaction.atomic
def retry_failed(*, run: ModelRun) -> ModelRun:
    """Give failed units a fresh set of attempts and queue them again.

    The units a failed run cancelled (an unreachable endpoint, a refused key) are queued
    again too, so retrying such a run after fixing the endpoint finishes it.

    Raises:
        RunError: the run has nothing to retry.
    """
    run = ModelRun.objects.select_for_update(no_key=True).get(pk=run.pk)  # see cancel_run
    units = retryable_units(run)
    ids = list(units.values_list("pk", flat=True))
    if not ids:
        raise RunError(f"run {run.pk} has no failed units to retry")
    units.update(
        state=UnitState.PENDING, attempts=0, lost_leases=0, last_error="", lease_until=None
    )
    run.state = RunState.QUEUED
    run.finished = None
    run.resumed = timezone.now()
    run.error = ""
    run.save(update_fields=["state", "finished", "error", "resumed"])
    _enqueue_on_commit(run, ids)
    return run


def reconcile_runs(now=None, *, pending_older_than: timedelta | None = None) -> int:
    """Re-enqueue units of active runs that nobody is working on.

    Running units whose lease expired (their worker died) are sent again, and so are
    pending units (their message may have been lost: an in-memory broker, or a worker
    that had prefetched it and died). With ``pending_older_than``, only units untouched
    for that long are sent, so a periodic reconcile does not pile duplicate messages on
    units that are simply waiting their turn; a sent unit is touched. Sending twice is
    harmless: `execute_unit` takes a lease and skips finished work.

    Returns:
        How many units were re-enqueued.
    """
    now = now or timezone.now()
    count = 0
    runs = ModelRun.objects.filter(state__in=ACTIVE_RUN_STATES).select_related("endpoint")
    untouched = Q() if pending_older_than is None else Q(updated__lt=now - pending_older_than)
    for run in runs:
        with transaction.atomic():
            stale = run.units.filter(untouched).filter(
                Q(state=UnitState.PENDING)
                | Q(state=UnitState.RUNNING, lease_until__lt=now)
                | Q(state=UnitState.RUNNING, lease_until__isnull=True)
            )
            ids = list(stale.values_list("pk", flat=True))
            # Expired units stay `running`: the next claim counts the lost lease.
            WorkUnit.objects.filter(pk__in=ids).update(updated=now)
            _enqueue_on_commit(run, ids)
        count += len(ids)
    return count


def reconcile_if_due(*, every: timedelta, now=None) -> int | None:
    """Run `reconcile_runs` unless some process did less than ``every`` ago.

    Every worker process calls this periodically, whatever queues it reads; moving the
    ``reconcile`` `Beat` forward is one conditional UPDATE, so one process per period
    wins and the others skip.

    Returns:
        Units re-enqueued, or None when it was not due.
    """
    now = now or timezone.now()
    Beat.objects.get_or_create(name="reconcile", defaults={"due": now})
    if not Beat.objects.filter(name="reconcile", due__lte=now).update(due=now + every):
        return None
    return reconcile_runs(now, pending_older_than=lease())
