"""What executors write: the response cache, one response, and the unit being worked on.

`Context.save` upserts one response under the unit's lease, adds its cost and applies
the run's budget; `cached_call` answers a model call that was made before (a retried
unit does not pay twice).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F

from benchmark.models import CachedCall, ModelEndpoint, ModelResponse, ModelRun, RunState, WorkUnit
from benchmark.services import leases
from benchmark.services.leases import Stop
from benchmark.services.runs import ACTIVE_RUN_STATES, cost_of

# --- the response cache -------------------------------------------------------------------


def cache_key(endpoint: ModelEndpoint, kind: str, prompt: str, extra: dict, sample: int) -> str:
    """Endpoint + revision, prompt hash, call parameters and sample index → a key."""
    material = json.dumps(
        [
            endpoint.provider,
            endpoint.model,
            endpoint.revision,
            kind,
            hashlib.sha256(prompt.encode()).hexdigest(),
            extra,
            sample,
        ],
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def cached_call(endpoint: ModelEndpoint, key: str, compute) -> tuple[dict, bool]:
    """The stored answer for ``key``, or ``compute()`` stored under it; and whether it was hit."""
    hit = CachedCall.objects.filter(key=key).values_list("value", flat=True).first()
    if hit is not None:
        return hit, True
    value = compute()
    store_call(endpoint, key, value)
    return value, False


def store_call(endpoint: ModelEndpoint, key: str, value: dict) -> None:
    """Keep a computed answer under ``key`` (a no-op if another worker stored it first)."""
    try:
        with transaction.atomic():
            CachedCall.objects.create(key=key, endpoint=endpoint, value=value)
    except IntegrityError:
        pass  # another worker stored the same call meanwhile: both answers are equivalent


# --- one unit --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One response to record."""

    item_key: str
    sample_index: int
    prompt: str = ""
    raw_output: str = ""
    answer: str = ""
    distribution: dict | None = None
    mass_outside: float | None = None
    logprob: float | None = None
    details: dict = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    cached: bool = False


@dataclass
class Context:
    """What an executor needs: the run, its spec and items, the runner, and the unit."""

    run: ModelRun
    unit: WorkUnit
    spec: object
    items: list
    runner: object
    done: set = field(default_factory=set)

    @property
    def endpoint(self) -> ModelEndpoint:
        """The run's endpoint."""
        return self.run.endpoint

    def save(self, outcome: Outcome) -> None:
        """Upsert one response, add its cost, apply the budget, extend the lease.

        Raises:
            LeaseLost: another worker holds the unit now; nothing was written.
        """
        cost = (
            Decimal(0)
            if outcome.cached
            else cost_of(self.endpoint, outcome.prompt_tokens, outcome.completion_tokens)
        )
        with transaction.atomic():
            # Run row first, then the unit (the order cancel, resume and retry use), so a
            # write and a cancel never wait for each other in a circle.
            if cost:
                ModelRun.objects.filter(pk=self.run.pk).update(cost_usd=F("cost_usd") + cost)
            leases.hold(self.unit)  # locks the unit's row until this write commits
            ModelResponse.objects.update_or_create(
                run=self.run,
                item_key=outcome.item_key,
                sample_index=outcome.sample_index,
                defaults={
                    "unit": self.unit,
                    "scoring_mode": self.run.scoring_mode,
                    "prompt": outcome.prompt,
                    "raw_output": outcome.raw_output,
                    "answer": outcome.answer,
                    "distribution": outcome.distribution,
                    "mass_outside": outcome.mass_outside,
                    "logprob": outcome.logprob,
                    "details": outcome.details,
                    "prompt_tokens": outcome.prompt_tokens,
                    "completion_tokens": outcome.completion_tokens,
                    "cost_usd": cost,
                    "latency_ms": outcome.latency_ms,
                    "cached": outcome.cached,
                },
            )
        self.done.add((outcome.item_key, outcome.sample_index))
        self.check_active()

    def check_active(self) -> None:
        """Raise `Stop` when the run is no longer active or its budget is spent."""
        paused = ModelRun.objects.filter(
            pk=self.run.pk,
            state__in=ACTIVE_RUN_STATES,
            budget_usd__isnull=False,
            cost_usd__gte=F("budget_usd"),
        ).update(state=RunState.PAUSED, error="budget reached")
        if paused:
            raise Stop("budget reached")
        state = ModelRun.objects.filter(pk=self.run.pk).values_list("state", flat=True).first()
        if state not in ACTIVE_RUN_STATES:
            raise Stop(f"run is {state}")
