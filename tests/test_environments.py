"""Seeded environments: same seed, same world; outcomes follow the stated probabilities."""

import numpy as np
import pytest

from benchmark.environments import make_environment

PARAMS = {"arms": ["L", "R"], "blocks": [[0.2, 0.9], [0.7, 0.1]], "trials_per_block": 2000}


def test_outcomes_are_fixed_by_the_seed_not_by_call_order():
    a = make_environment("two_armed_bandit", seed=3, params=PARAMS)
    b = make_environment("two_armed_bandit", seed=3, params=PARAMS)
    forward = [a.feedback(t, "L")["reward"] for t in range(50)]
    backward = [b.feedback(t, "L")["reward"] for t in reversed(range(50))][::-1]
    assert forward == backward
    c = make_environment("two_armed_bandit", seed=4, params=PARAMS)
    assert forward != [c.feedback(t, "L")["reward"] for t in range(50)]


def test_reward_rates_match_block_probabilities():
    env = make_environment("two_armed_bandit", seed=0, params=PARAMS)
    for block, probs in enumerate(PARAMS["blocks"]):
        trials = range(block * 2000, (block + 1) * 2000)
        for arm, p in zip(["L", "R"], probs, strict=True):
            rate = np.mean([env.feedback(t, arm)["reward"] for t in trials])
            # 2000 Bernoulli draws: 5 standard errors is far beyond chance failure.
            assert abs(rate - p) < 5 * np.sqrt(p * (1 - p) / 2000)


def test_trial_context_and_bounds():
    env = make_environment("two_armed_bandit", seed=0, params=PARAMS)
    assert env.n_trials == 4000
    assert env.trial(0).context == {"block": 1, "trial": 1}
    assert env.trial(2000).context == {"block": 2, "trial": 1}
    with pytest.raises(ValueError, match=r"trial 4000 outside 0\.\.3999"):
        env.trial(4000)
    with pytest.raises(ValueError, match="answer 'X' is not one of the arms"):
        env.feedback(0, "X")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({**PARAMS, "arms": ["L"]}, "arms must be two distinct keys"),
        ({**PARAMS, "blocks": [[0.5, 1.5]]}, "probabilities in"),
        ({**PARAMS, "trials_per_block": 0}, "at least 1"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        make_environment("two_armed_bandit", seed=0, params=params)


def test_unknown_environment():
    with pytest.raises(ValueError, match="unknown environment 'maze'"):
        make_environment("maze", seed=0, params={})
