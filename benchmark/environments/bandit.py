"""Two-armed bandit in blocks, as in Dezfouli et al. (2019).

Each block has its own reward probability per arm. Rewards are drawn once per
(trial, arm) from the seed, so the outcome of pressing an arm on trial t is fixed
before anyone plays: a reload or a retry cannot change it, and the client never
decides it.
"""

import numpy as np

from benchmark.environments.base import Environment, Trial


class TwoArmedBandit(Environment):
    """Arms with per-block Bernoulli rewards.

    Args:
        seed: fixes every reward.
        arms: the arm keys, e.g. ``["L", "R"]``.
        blocks: one reward probability per arm for each block, e.g. ``[[0.84, 0.95], …]``.
        trials_per_block: trials in every block.
        reward_text / no_reward_text: the feedback wording.
    """

    name = "two_armed_bandit"

    def __init__(
        self,
        *,
        seed: int,
        arms: list[str],
        blocks: list[list[float]],
        trials_per_block: int,
        reward_text: str = "received a reward",
        no_reward_text: str = "received no reward",
    ):
        super().__init__(seed=seed)
        if len(arms) != 2 or len(set(arms)) != 2:
            raise ValueError("arms must be two distinct keys")
        if not blocks or any(len(p) != 2 or not all(0 <= x <= 1 for x in p) for p in blocks):
            raise ValueError("blocks must be a list of [p_arm0, p_arm1] probabilities in [0, 1]")
        if trials_per_block < 1:
            raise ValueError("trials_per_block must be at least 1")
        self.arms = list(arms)
        self.blocks = [list(map(float, p)) for p in blocks]
        self.trials_per_block = int(trials_per_block)
        self.reward_text = reward_text
        self.no_reward_text = no_reward_text
        probs = np.repeat(np.asarray(self.blocks), self.trials_per_block, axis=0)
        draws = np.random.default_rng(seed).random(probs.shape)
        self._rewards = (draws < probs).astype(int)  # shape (n_trials, 2)

    @property
    def n_trials(self) -> int:
        """Blocks × trials per block."""
        return len(self.blocks) * self.trials_per_block

    def _check(self, index: int) -> None:
        if not 0 <= index < self.n_trials:
            raise ValueError(f"trial {index} outside 0..{self.n_trials - 1}")

    def trial(self, index: int) -> Trial:
        """Block (1-based) and trial within the block."""
        self._check(index)
        block, within = divmod(index, self.trials_per_block)
        return Trial(index=index, context={"block": block + 1, "trial": within + 1})

    def feedback(self, index: int, answer: str) -> dict:
        """Reward (0/1) and its wording for pressing ``answer`` on trial ``index``."""
        self._check(index)
        if answer not in self.arms:
            raise ValueError(f"answer {answer!r} is not one of the arms {self.arms}")
        reward = int(self._rewards[index, self.arms.index(answer)])
        return {"reward": reward, "outcome": self.reward_text if reward else self.no_reward_text}
