"""Executing one work unit: claim it, do what is missing, record each answer, release it.

Called by the dramatiq actors (and directly by tests and `manage.py run_model`). Safe
to call twice for the same unit, concurrently or after a crash: the lease makes the
second call a no-op while the first is alive (`leases`: a thread keeps it while the
unit is worked on, and every write checks it); after a crash the retry skips every
(item, sample) that already has a response, and the response cache answers any call
that had been made.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import threading
import time

import numpy as np

from benchmark.models import (
    ModelEndpoint,
    ModelRun,
    Provider,
    RunMode,
    ScoringMode,
    Transcript,
)
from benchmark.rendering import Turn, environment_for, render_profile, render_prompt, spec_items
from benchmark.services import leases, local_workers
from benchmark.services.calls import (
    EndpointUnusable,
    chat_prompt,
    exact_distribution,
    exact_population,
    prefetch_exact,
    provider_call,
    sample_text,
)
from benchmark.services.leases import LeaseLost, Stop
from benchmark.services.responses import Context, Outcome, cache_key, cached_call
from benchmark.services.runs import (
    CHARS_PER_TOKEN,
    endpoint_capabilities,
    population_prompt,
    preamble_for,
)
from benchmark.specs import spec_from_json

log = logging.getLogger(__name__)

__all__ = ["LeaseLost", "Stop", "execute_unit"]


# --- runners, one per endpoint per process ---------------------------------------------

_runners: dict[tuple, object] = {}
_runners_lock = threading.Lock()


def runner_for(endpoint: ModelEndpoint):
    """The process-wide runner of an endpoint: a local model is loaded once per process."""
    key = (
        endpoint.pk,
        endpoint.provider,
        endpoint.model,
        endpoint.revision,
        endpoint.api_key_env,
        json.dumps(endpoint.settings, sort_keys=True),
    )
    from benchmark.runners.base import ModelCheckError

    with _runners_lock:
        runner = _runners.get(key)
        if runner is None:
            started = time.perf_counter()
            local = endpoint.provider in (Provider.HF, Provider.VLLM)
            threads = local_workers.configure_torch_threads() if local else None
            try:
                runner = _runners[key] = build_runner(endpoint)
            except ModelCheckError as exc:
                raise EndpointUnusable(f"the model failed its check on load: {exc}") from exc
            if local:
                log.info(
                    "model loaded: endpoint %s (%s) in %.1f s by %s, %s torch thread(s), cores %s",
                    endpoint.pk,
                    endpoint.provider,
                    time.perf_counter() - started,
                    local_workers.worker_id(),
                    threads,
                    ",".join(map(str, local_workers.own_cores())),
                )
            if len(_runners) == 1:
                atexit.register(close_runners)  # a vLLM engine must be shut down to exit
        return runner


def build_runner(endpoint: ModelEndpoint):
    """Instantiate the runner of an endpoint from its provider and settings."""
    from benchmark.runners import get_runner

    options = {k: v for k, v in endpoint.settings.items() if k != "capabilities"}
    if endpoint.provider in (Provider.HF, Provider.VLLM):
        options.setdefault("model_path", endpoint.model)
    else:
        options.setdefault("model", endpoint.model)
        if endpoint.api_key_env:
            options.setdefault("api_key_env", endpoint.api_key_env)
    return get_runner(endpoint.provider, **options)


def close_runners() -> None:
    """Release every runner of this process (tests, worker shutdown)."""
    with _runners_lock:
        for runner in _runners.values():
            runner.close()
        _runners.clear()


# --- one unit --------------------------------------------------------------------------------


def execute_unit(unit_id: int) -> str:
    """Do the missing work of one unit.

    Returns:
        What happened: ``done``, ``skipped`` (finished, leased elsewhere, or run inactive),
        ``stopped`` (cancelled or budget), ``lost`` (another worker took the unit over),
        ``retry`` (an error; attempts left) or ``failed``.
    """
    unit = leases.claim(unit_id)
    if unit is None:
        return "skipped"
    run = unit.run
    errors: list[str] = []
    with leases.LeaseKeeper(unit):
        try:
            spec = spec_from_json(run.task_version.spec)
            ctx = Context(
                run=run,
                unit=unit,
                spec=spec,
                items=spec_items(spec) if run.mode != RunMode.LIKELIHOOD else [],
                runner=runner_for(run.endpoint),  # may load a model: the lease is kept meanwhile
                done=set(run.responses.filter(unit=unit).values_list("item_key", "sample_index")),
            )
            errors = EXECUTORS[_executor_name(run, spec)](ctx)
        except LeaseLost:
            # Cancelled meanwhile, or taken over by another worker after this one stalled.
            log.warning("unit %s of run %s is no longer held here: stopped", unit.pk, run.pk)
            return "lost"
        except Stop:
            leases.give_back(unit)
            return "stopped"
        except EndpointUnusable as exc:
            leases.fail_run(run, unit, str(exc))
            return "failed"
        except Exception as exc:
            log.exception("unit %s of run %s failed", unit.pk, run.pk)
            errors = [f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__]
    if errors:
        return leases.release_after_error(unit, "; ".join(errors))
    return "done" if leases.finish(unit) else "lost"


def _executor_name(run: ModelRun, spec) -> str:
    if run.mode == RunMode.LIKELIHOOD:
        return "likelihood"
    if spec.kind == "sequential":
        return "sequential"
    return run.mode


# --- executors --------------------------------------------------------------------------------


def _answer_item(
    ctx: Context,
    key: str,
    prompt: str,
    options: list[str],
    sample: int,
    ready: dict | None = None,
) -> Outcome:
    """One participant answer to one item, exact (``ready``: see `prefetch_exact`) or sampled."""
    from benchmark.runners.options import parse_option

    if ctx.run.scoring_mode == ScoringMode.EXACT:
        value, hit, ms = exact_distribution(ctx, prompt, options, ready)
        probs = value["probs"]
        return Outcome(
            item_key=key,
            sample_index=0,
            prompt=prompt,
            answer=max(probs, key=probs.get),
            distribution=probs,
            mass_outside=value["mass_outside"],
            details={"logprobs": value["logprobs"], "continuation": "option" + value["closing"]},
            prompt_tokens=len(options) * len(prompt) // CHARS_PER_TOKEN,
            latency_ms=ms,
            cached=hit,
        )
    chat = "score" not in endpoint_capabilities(ctx.endpoint)
    text_prompt = chat_prompt(prompt, options) if chat else prompt
    value, hit, ms = sample_text(ctx, text_prompt, sample)
    parsed = parse_option(value["text"], options)
    return Outcome(
        item_key=key,
        sample_index=sample,
        prompt=text_prompt,
        raw_output=value["text"],
        answer=parsed or "",
        details={"unparsed": parsed is None},
        prompt_tokens=value["prompt_tokens"],
        completion_tokens=value["completion_tokens"],
        latency_ms=ms,
        cached=hit,
    )


def _samples(ctx: Context) -> range:
    return range(1 if ctx.run.scoring_mode == ScoringMode.EXACT else ctx.run.samples_per_item)


def _run_items(ctx: Context, work) -> list[str]:
    """Call ``work(key)`` for each payload entry; one bad item does not stop the others."""
    errors = []
    for key in ctx.unit.payload:
        try:
            work(key)
        except (Stop, EndpointUnusable):
            raise
        except Exception as exc:
            log.warning("item %s of run %s: %s", key, ctx.run.pk, exc)
            errors.append(f"item {key}: {type(exc).__name__}: {exc}")
    return errors


def _exact_first(ctx: Context, question) -> dict:
    """In an exact run, the unit's pending items scored in one call (`prefetch_exact`).

    ``question(entry)`` gives an entry's prompt and options (cached by the caller, so each
    is rendered once); an entry whose question cannot be built is left out here and fails
    alone in its turn.
    """
    if ctx.run.scoring_mode != ScoringMode.EXACT:
        return {}
    asked = []
    for entry in ctx.unit.payload:
        if (entry, 0) not in ctx.done:
            with contextlib.suppress(Exception):  # `_run_items` reports it in its turn
                asked.append(question(entry))
    return prefetch_exact(ctx, asked)


def run_participant(ctx: Context) -> list[str]:
    """First-person answers to independent items (questionnaire, choice)."""
    by_key = {i.key: i for i in ctx.items}
    preamble = preamble_for(ctx.run)

    @functools.cache
    def question(key):
        options = [o.key for o in by_key[key].options]
        return preamble + render_prompt(ctx.spec, [], key, items=ctx.items).text, options

    ready = _exact_first(ctx, question)

    def work(key):
        prompt, options = question(key)
        for sample in _samples(ctx):
            if (key, sample) not in ctx.done:
                ctx.save(_answer_item(ctx, key, prompt, options, sample, ready))

    return _run_items(ctx, work)


def run_predict_individual(ctx: Context) -> list[str]:
    """Answers predicted for real participants from their profiles (payload ``pid:item``)."""
    by_key = {i.key: i for i in ctx.items}
    ids = {int(entry.split(":", 1)[0]) for entry in ctx.unit.payload}
    profiles = dict(Transcript.objects.filter(pk__in=ids).values_list("pk", "profile"))
    preamble = preamble_for(ctx.run)

    @functools.cache
    def question(entry):
        pid, key = entry.split(":", 1)
        options = [o.key for o in by_key[key].options]
        profile = profiles[int(pid)]
        return preamble + render_prompt(
            ctx.spec, [], key, profile=profile, items=ctx.items
        ).text, options

    ready = _exact_first(ctx, question)

    def work(entry):
        key = entry.split(":", 1)[1]
        prompt, options = question(entry)
        for sample in _samples(ctx):
            if (entry, sample) not in ctx.done:
                outcome = _answer_item(ctx, key, prompt, options, sample, ready)
                outcome.item_key = entry
                ctx.save(outcome)

    return _run_items(ctx, work)


def _predict_population_exact(ctx: Context, key: str, prompt: str, options: list[str]) -> Outcome:
    """One exact prediction: each option's expected percentage, renormalised (see runners)."""
    from benchmark.runners.population import NUMBERS

    value, hit, ms = exact_population(ctx, prompt, options)
    outside = value["mass_outside"]
    return Outcome(
        item_key=key,
        sample_index=0,
        prompt=prompt,
        distribution=value["probs"],
        mass_outside=sum(outside.values()) / len(outside),  # mean over the options
        details={
            "path": "exact",
            "unparsed": False,
            "percent": value["percent"],
            "expected_percent": value["expected"],
            "mass_outside_per_option": outside,
            "continuation": "'n" + value["closing"] + "' after ' option: '",
        },
        prompt_tokens=len(options) * len(NUMBERS) * len(prompt) // CHARS_PER_TOKEN,
        latency_ms=ms,
        cached=hit,
    )


def run_predict_population(ctx: Context) -> list[str]:
    """The model's estimate of the human answer distribution.

    Exact: one prediction per item from log-probabilities (`exact_population`). Sampled:
    N generations, each parsed as stated percentages; one that does not parse is kept
    and flagged ``unparsed``.
    """
    from benchmark.runners.options import parse_percentages

    by_key = {i.key: i for i in ctx.items}
    preamble = preamble_for(ctx.run)

    def work(key):
        options = [o.key for o in by_key[key].options]
        base = preamble + render_prompt(ctx.spec, [], key, items=ctx.items).text
        prompt = population_prompt(base, options)
        if ctx.run.scoring_mode == ScoringMode.EXACT:
            if (key, 0) not in ctx.done:
                ctx.save(_predict_population_exact(ctx, key, prompt, options))
            return
        for sample in range(ctx.run.samples_per_item):
            if (key, sample) in ctx.done:
                continue
            value, hit, ms = sample_text(ctx, prompt, sample, max_tokens=40)
            parsed = parse_percentages(value["text"], options)
            ctx.save(
                Outcome(
                    item_key=key,
                    sample_index=sample,
                    prompt=prompt,
                    raw_output=value["text"],
                    distribution=parsed,
                    details={"path": "sampled", "unparsed": parsed is None},
                    prompt_tokens=value["prompt_tokens"],
                    completion_tokens=value["completion_tokens"],
                    latency_ms=ms,
                    cached=hit,
                )
            )

    return _run_items(ctx, work)


def run_sequential(ctx: Context) -> list[str]:
    """Play sessions trial by trial: the environment answers, the transcript grows.

    Payload: the sample (session) indexes. A resumed session rebuilds its history from
    the stored answers; the environment's feedback depends only on (trial, answer), so
    the rebuilt history is the one the model saw.
    """
    env = environment_for(ctx.spec)
    n_trials = min(ctx.run.max_trials or env.n_trials, env.n_trials)
    options = [o.key for o in ctx.spec.options]
    preamble = preamble_for(ctx.run)
    items = ctx.items[:n_trials]
    for sample in ctx.unit.payload:
        stored = dict(
            ctx.run.responses.filter(sample_index=sample).values_list("item_key", "answer")
        )
        history: list[Turn] = []
        for t in range(n_trials):
            key = items[t].key
            if key in stored:
                answer = stored[key]
                history.append(Turn(key, answer, env.feedback(t, answer)))
                continue
            prompt = preamble + render_prompt(ctx.spec, history, key, items=items).text
            outcome = _answer_item(ctx, key, prompt, options, sample)
            rng = np.random.default_rng([ctx.run.seed, sample, t])
            if ctx.run.scoring_mode == ScoringMode.EXACT:
                # Play an answer drawn from the model's distribution, not its mode, so the
                # session reflects the model's behaviour; the draw is seeded per trial.
                keys = list(outcome.distribution)
                probs = np.array([outcome.distribution[k] for k in keys])
                outcome.answer = keys[int(rng.choice(len(keys), p=probs / probs.sum()))]
            elif not outcome.answer:
                # Unparseable: recorded as such, and the session goes on with a random arm.
                outcome.answer = options[int(rng.integers(len(options)))]
                outcome.details["fallback"] = True
            outcome.sample_index = sample
            outcome.details["feedback"] = env.feedback(t, outcome.answer)
            ctx.save(outcome)
            history.append(Turn(key, outcome.answer, outcome.details["feedback"]))
    return []


def run_likelihood(ctx: Context) -> list[str]:
    """Log-likelihood of every human response span of each transcript in the payload."""
    from benchmark.runners.base import SpansRequest

    transcripts = {t.pk: t for t in Transcript.objects.filter(pk__in=ctx.unit.payload)}

    def work(pid):
        t = transcripts[pid]
        key = f"transcript:{pid}"
        if (key, 0) in ctx.done:
            return
        prefix = render_profile(t.profile) if ctx.run.with_profile else ""
        request = SpansRequest(
            text=prefix + t.text,
            spans=tuple((len(prefix) + start, len(prefix) + end) for start, end in t.spans),
        )

        def compute():
            results = provider_call(lambda: ctx.runner.score_spans([request]))[0]
            return {"span_logprobs": [r.logprob for r in results]}

        started = time.perf_counter()
        value, hit = cached_call(
            ctx.endpoint,
            cache_key(ctx.endpoint, "spans", request.text, {"spans": request.spans}, 0),
            compute,
        )
        spans = value["span_logprobs"]
        ctx.save(
            Outcome(
                item_key=key,
                sample_index=0,
                logprob=float(sum(spans)),
                details={"span_logprobs": spans, "participant": t.participant},
                prompt_tokens=len(request.text) // CHARS_PER_TOKEN,
                latency_ms=(time.perf_counter() - started) * 1000,
                cached=hit,
            )
        )

    return _run_items(ctx, work)


EXECUTORS = {
    RunMode.PARTICIPANT: run_participant,
    RunMode.PREDICT_INDIVIDUAL: run_predict_individual,
    RunMode.PREDICT_POPULATION: run_predict_population,
    "sequential": run_sequential,
    "likelihood": run_likelihood,
}
