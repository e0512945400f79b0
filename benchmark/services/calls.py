"""Calling the model for one item: exact distributions, population predictions, samples.

Every call goes through the response cache (`benchmark.services.responses`), so a unit
retried after a crash calls nothing twice; refusals that no retry can fix become
`EndpointUnusable`, which stops the run instead of failing unit after unit.
"""

from __future__ import annotations

import logging
import time

from benchmark.services.responses import Context, cache_key, cached_call, store_call
from benchmark.services.runs import CHARS_PER_TOKEN, endpoint_capabilities

log = logging.getLogger(__name__)

CLOSING = ">>"


class EndpointUnusable(Exception):
    """The endpoint refuses or cannot be reached: retrying other units would not help."""


def provider_call(fn):
    """Run a provider call; turn refusals that no retry can fix into `EndpointUnusable`."""
    from benchmark.runners.base import CapabilityError
    from benchmark.runners.http import EndpointUnreachable, MissingCredentials

    try:
        return fn()
    except (CapabilityError, MissingCredentials) as exc:
        raise EndpointUnusable(str(exc)) from exc
    except EndpointUnreachable as exc:
        raise EndpointUnusable(f"the endpoint cannot be reached: {exc}") from exc
    except Exception as exc:
        status = getattr(exc, "status", None)
        if status is not None and 400 <= status < 500 and status not in (408, 409, 429):
            raise EndpointUnusable(f"the endpoint refused the request: {exc}") from exc
        raise


def _options_key(ctx: Context, prompt: str, options: list[str]) -> tuple[str, str]:
    """The cache key of an item's exact distribution, and its closing."""
    from benchmark.runners.options import closing_for

    closing = closing_for(options)
    extra = {"options": options, "closing": closing}
    return cache_key(ctx.endpoint, "options", prompt, extra, 0), closing


def _distribution_value(d) -> dict:
    return {
        "probs": d.probs,
        "logprobs": d.logprobs,
        "mass_outside": d.mass_outside,
        "closing": d.closing,
    }


def exact_distribution(
    ctx: Context, prompt: str, options: list[str], ready: dict | None = None
) -> tuple[dict, bool, float]:
    """Option distribution from log-probabilities (cached): value, cache hit, latency (ms).

    ``ready`` holds what `prefetch_exact` computed for the unit, by cache key, with its
    share of the call's latency: such a value was computed now, not found in the cache.
    """
    from benchmark.runners.options import option_distribution

    key, closing = _options_key(ctx, prompt, options)
    if ready and key in ready:
        value, ms = ready[key]
        return value, False, ms

    def compute():
        return _distribution_value(
            provider_call(lambda: option_distribution(ctx.runner, prompt, options, closing))
        )

    started = time.perf_counter()
    value, hit = cached_call(ctx.endpoint, key, compute)
    return value, hit, (time.perf_counter() - started) * 1000


def prefetch_exact(ctx: Context, entries: list[tuple[str, list[str]]]) -> dict:
    """Exact distributions of a unit's uncached items from one runner call, by cache key.

    One call lets the runner read the items together (the hf runner packs them into rows
    that read their shared instructions once; one call per item read them every time:
    the short items of `benchmarks/bench_lmeval.py` took 2.6× as long through the queue
    as in one call). Each value is stored in the cache as it would have been item by
    item. If the call fails, nothing is returned and the items go one by one, so one bad
    item still fails alone.

    Returns:
        ``{cache key: (value, milliseconds)}``, the call's time shared among its items.
    """
    from benchmark.models import CachedCall
    from benchmark.runners.options import option_distributions

    keyed = {}
    for prompt, options in entries:
        key, closing = _options_key(ctx, prompt, options)
        keyed[key] = (prompt, options, closing)
    stored = set(CachedCall.objects.filter(key__in=list(keyed)).values_list("key", flat=True))
    todo = [(key, item) for key, item in keyed.items() if key not in stored]
    if len(todo) < 2:
        return {}
    started = time.perf_counter()
    try:
        found = provider_call(lambda: option_distributions(ctx.runner, [item for _, item in todo]))
    except EndpointUnusable:
        raise
    except Exception as exc:
        log.warning("unit %s: scoring its items together failed (%s); one by one", ctx.unit.pk, exc)
        return {}
    ms = (time.perf_counter() - started) * 1000 / len(todo)
    ready = {}
    for (key, _), d in zip(todo, found, strict=True):
        value = _distribution_value(d)
        store_call(ctx.endpoint, key, value)
        ready[key] = (value, ms)
    return ready


def exact_population(ctx: Context, prompt: str, options: list[str]) -> tuple[dict, bool, float]:
    """Population prediction from log-probabilities (cached): value, cache hit, latency (ms)."""
    from benchmark.runners.population import POPULATION_EXACT_DEFINITION, population_prediction

    def compute():
        p = provider_call(lambda: population_prediction(ctx.runner, prompt, options))
        return {
            "probs": p.probs,
            "percent": p.percent,
            "expected": p.expected,
            "mass_outside": p.mass_outside,
            "closing": p.closing,
        }

    started = time.perf_counter()
    extra = {"options": options, "definition": POPULATION_EXACT_DEFINITION}
    key = cache_key(ctx.endpoint, "population", prompt, extra, 0)
    value, hit = cached_call(ctx.endpoint, key, compute)
    return value, hit, (time.perf_counter() - started) * 1000


def sample_text(ctx: Context, prompt: str, sample_index: int, *, max_tokens: int = 8):
    """One sampled completion (cached per sample index): value dict, cache hit, latency."""
    from benchmark.runners.base import SampleRequest

    params = ctx.run.params
    capabilities = endpoint_capabilities(ctx.endpoint)
    chat = "score" not in capabilities and "chat" in capabilities
    request = SampleRequest(
        prompt=prompt,
        max_tokens=int(params.get("max_tokens", max_tokens)),
        temperature=float(params.get("temperature", 1.0)),
        stop=() if chat else (CLOSING, "\n"),
        seed=(ctx.run.seed * 1_000_003 + sample_index) % 2**31,
        chat=chat,
    )

    def compute():
        (samples,) = provider_call(lambda: ctx.runner.sample([request], 1))
        s = samples[0]
        return {
            # PostgreSQL text and JSON cannot hold NUL; a model may still generate it.
            "text": s.text.replace("\x00", "\ufffd"),
            "prompt_tokens": s.prompt_tokens or len(prompt) // CHARS_PER_TOKEN,
            "completion_tokens": s.completion_tokens or len(s.text) // CHARS_PER_TOKEN + 1,
        }

    extra = {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "seed": request.seed,
        "chat": chat,
    }
    started = time.perf_counter()
    value, hit = cached_call(
        ctx.endpoint, cache_key(ctx.endpoint, "sample", prompt, extra, sample_index), compute
    )
    return value, hit, (time.perf_counter() - started) * 1000


def chat_prompt(prompt: str, options: list[str]) -> str:
    """A Psych-201 prompt for chat models, which cannot continue after ``<<``."""
    return (
        prompt.removesuffix("<<").rstrip()
        + f"\n\nReply with your answer only: one of {', '.join(options)}."
    )
