"""A study's task version as the player sees it: trials by key, their order, feedback.

Cached per spec hash, so every participant request reuses one parsed spec.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from benchmark.rendering import environment_for, spec_items
from benchmark.specs import spec_from_json
from participants.models import Study


class ParticipationError(Exception):
    """A participant action that cannot be done; ``code`` says why (shown as a page)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Plan:
    """A task version as the player sees it: its spec and every trial by key."""

    spec: object
    items: list
    trials: dict

    @property
    def kind(self) -> str:
        """The spec's kind."""
        return self.spec.kind


def _build_plan(spec_json: dict) -> Plan:
    spec = spec_from_json(spec_json)
    items = spec_items(spec)
    trials = {
        item.key: {
            "key": item.key,
            "text": item.text,
            "fields": item.fields,
            "options": [{"key": o.key, "label": o.label or o.key} for o in item.options],
        }
        for item in items
    }
    return Plan(spec=spec, items=items, trials=trials)


# Task versions are immutable and their spec hash is unique, so the hash alone names a
# plan: a request that finds it here never reads, parses or re-serialises the spec.
_PLANS: dict[str, Plan] = {}
_ENVIRONMENTS: dict[str, object] = {}
CACHED_VERSIONS = 32


def _remember(cache: dict, key: str, value):
    if len(cache) >= CACHED_VERSIONS:
        cache.pop(next(iter(cache), None), None)  # the oldest; another thread may race us
    cache[key] = value
    return value


def plan_for(study: Study) -> Plan:
    """The (cached) trial plan of a study's task version.

    The version's spec is read only when its plan is not cached yet (views load the
    version with the spec deferred).
    """
    version = study.task_version
    plan = _PLANS.get(version.spec_hash)
    if plan is None:
        plan = _remember(_PLANS, version.spec_hash, _build_plan(version.spec))
    return plan


def trial_order(study: Study, order_seed: int) -> list[str]:
    """Item keys in the order one session sees them: seeded shuffle when the spec asks for it.

    Sequential trials always keep their order (the environment's blocks depend on it).
    """
    plan = plan_for(study)
    keys = [item.key for item in plan.items]
    if plan.kind != "sequential" and getattr(plan.spec, "shuffle", False):
        random.Random(order_seed).shuffle(keys)  # noqa: S311 - reproducible, not secret
    return keys


def feedback_for(study: Study, item_key: str, answer: str) -> dict:
    """Server-side feedback for an answer: the environment's outcome, {} for other kinds."""
    plan = plan_for(study)
    if plan.kind != "sequential":
        return {}
    spec_hash = study.task_version.spec_hash
    env = _ENVIRONMENTS.get(spec_hash)
    if env is None:
        env = _remember(_ENVIRONMENTS, spec_hash, environment_for(plan.spec))
    return env.feedback(int(item_key.removeprefix("t")) - 1, answer)
