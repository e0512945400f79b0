"""A study's task version as the player sees it: trials by key, their order, feedback.

Cached per spec hash, so every participant request reuses one parsed spec.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import lru_cache

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


@lru_cache(maxsize=32)
def _plan(spec_hash: str, spec_json: str) -> Plan:
    spec = spec_from_json(json.loads(spec_json))
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


def plan_for(study: Study) -> Plan:
    """The (cached) trial plan of a study's task version."""
    version = study.task_version
    return _plan(version.spec_hash, json.dumps(version.spec, sort_keys=True))


@lru_cache(maxsize=32)
def _environment(spec_hash: str, spec_json: str):
    return environment_for(spec_from_json(json.loads(spec_json)))


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
    version = study.task_version
    if version.spec["kind"] != "sequential":
        return {}
    env = _environment(version.spec_hash, json.dumps(version.spec, sort_keys=True))
    return env.feedback(int(item_key.removeprefix("t")) - 1, answer)
