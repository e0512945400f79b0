"""The environment interface shared by sequential tasks."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Trial:
    """What is shown before trial ``index`` (0-based) is answered."""

    index: int
    context: dict = field(default_factory=dict)


class Environment(ABC):
    """A seeded world: `trial` says what a trial shows, `feedback` what an answer earns."""

    name: str = ""

    def __init__(self, *, seed: int):
        self.seed = seed

    @property
    @abstractmethod
    def n_trials(self) -> int:
        """How many trials one session has."""

    @abstractmethod
    def trial(self, index: int) -> Trial:
        """Context fields shown before trial ``index`` is answered."""

    @abstractmethod
    def feedback(self, index: int, answer: str) -> dict:
        """Feedback fields for ``answer`` on trial ``index`` (pure: same inputs, same output)."""
