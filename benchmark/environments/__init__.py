"""Seeded environments for sequential tasks, by name.

An environment decides what happens after each answer. Outcomes depend only on
the seed, the trial index and the answer, never on the order of calls, so a
resumed session (a reload, a retried work unit) sees exactly the same world.
"""

from benchmark.environments.bandit import TwoArmedBandit
from benchmark.environments.base import Environment, Trial

REGISTRY: dict[str, type[Environment]] = {
    TwoArmedBandit.name: TwoArmedBandit,
}


def make_environment(name: str, *, seed: int, params: dict) -> Environment:
    """Build a registered environment.

    Args:
        name: registry name, e.g. ``two_armed_bandit``.
        seed: the seed that fixes every outcome.
        params: environment parameters from the task spec.

    Returns:
        The environment.

    Raises:
        ValueError: unknown name or invalid parameters.
    """
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown environment {name!r}; known: {sorted(REGISTRY)}") from None
    return cls(seed=seed, **params)


__all__ = ["REGISTRY", "Environment", "Trial", "make_environment"]
