"""The one interface every runner speaks.

``score`` gives log-probabilities of given continuations (exact answer distributions);
``sample`` gives generations. Both take batches. A runner declares what it can do in
``capabilities``; asking for something else raises `CapabilityError` before any call.

The class attribute ``capabilities`` is the most a runner of that kind can do (read
without building the runner, to refuse a run before it is queued); an instance may
narrow it once it knows its model (e.g. no ``chat`` without a chat template).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

SCORE, SAMPLE, CHAT, TOKEN_LOGPROBS = "score", "sample", "chat", "token_logprobs"
CAPABILITIES = frozenset({SCORE, SAMPLE, CHAT, TOKEN_LOGPROBS})


@dataclass(frozen=True)
class ScoreRequest:
    """Score ``continuation`` after ``context``."""

    context: str
    continuation: str


@dataclass(frozen=True)
class SpansRequest:
    """Score several character spans of one text (the responses of a transcript).

    Each span is scored given all the text before it, as a `ScoreRequest` with
    ``context=text[:start]`` would be, but runners that can read every token of a text
    in one pass do so instead of one pass per span.
    """

    text: str
    spans: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ScoreResult:
    """Log-probability of a continuation: the sum and per token.

    ``greedy`` says whether every continuation token was the model's top choice
    (None when the backend does not tell).
    """

    logprob: float
    token_logprobs: list[float]
    tokens: list[str]
    greedy: bool | None = None


@dataclass(frozen=True)
class SampleRequest:
    """Generate after ``prompt`` (a user message in the model's chat format when ``chat``)."""

    prompt: str
    max_tokens: int = 16
    temperature: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    chat: bool = False


@dataclass(frozen=True)
class Sample:
    """One generation, with its token log-probabilities when the backend gives them."""

    text: str
    token_logprobs: list[float] | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def span_results(picks: list[list[int]], scored: dict) -> list[ScoreResult]:
    """One `ScoreResult` per span from per-token scores.

    Args:
        picks: for each span, the indexes of its tokens in the text.
        scored: token index → (log-probability, was it the top choice, token text).
    """
    return [
        ScoreResult(
            logprob=float(sum(scored[i][0] for i in pick)),
            token_logprobs=[float(scored[i][0]) for i in pick],
            tokens=[scored[i][2] for i in pick],
            greedy=all(scored[i][1] for i in pick),
        )
        for pick in picks
    ]


class CapabilityError(RuntimeError):
    """The runner cannot do what was asked (e.g. log-probabilities from a chat-only API)."""


class ModelCheckError(RuntimeError):
    """A loaded model gives nonsense (e.g. the same probability to every token)."""


# A prompt whose next words a working model does not find equally likely.
CHECK_CONTEXT = "The capital of France is"
CHECK_CONTINUATIONS = (" Paris", " London", " the", " 1", ".")


class Runner(ABC):
    """A language model behind one interface; heavy SDKs are imported lazily."""

    name: str = ""
    capabilities: frozenset[str] = frozenset()

    def score(self, requests: list[ScoreRequest]) -> list[ScoreResult]:
        """Log-probabilities of each request's continuation, in the order given.

        Raises:
            CapabilityError: the runner cannot score.
        """
        require(self, SCORE)
        if not requests:
            return []
        return self._score(list(requests))

    def score_spans(self, requests: list[SpansRequest]) -> list[list[ScoreResult]]:
        """Log-probabilities of each span of each text: one list of results per request.

        Raises:
            CapabilityError: the runner cannot score.
            ValueError: a span is empty or outside its text.
        """
        require(self, SCORE)
        for r in requests:
            for start, end in r.spans:
                if not 0 <= start < end <= len(r.text):
                    raise ValueError(f"span ({start}, {end}) is empty or outside the text")
        if not requests:
            return []
        return self._score_spans(list(requests))

    def sample(self, requests: list[SampleRequest], n: int = 1) -> list[list[Sample]]:
        """``n`` generations per request, in the order given.

        Raises:
            CapabilityError: the runner cannot sample, or a request is a chat and it cannot chat.
            ValueError: ``n`` is below 1.
        """
        require(self, SAMPLE)
        if any(r.chat for r in requests):
            require(self, CHAT)
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        if not requests:
            return []
        return self._sample(list(requests), n)

    def _score(self, requests: list[ScoreRequest]) -> list[ScoreResult]:
        """Backend scoring; `score` calls it only when the runner declares ``score``."""
        raise CapabilityError(f"the {self.name} runner cannot score")

    def _score_spans(self, requests: list[SpansRequest]) -> list[list[ScoreResult]]:
        """One `ScoreRequest` per span; runners that read whole texts override this."""
        flat = [
            ScoreRequest(context=r.text[:start], continuation=r.text[start:end])
            for r in requests
            for start, end in r.spans
        ]
        results = iter(self._score(flat))
        return [[next(results) for _ in r.spans] for r in requests]

    @abstractmethod
    def _sample(self, requests: list[SampleRequest], n: int) -> list[list[Sample]]:
        """Backend sampling: ``n`` samples for each request."""

    def check_model(self) -> None:
        """Refuse a model whose next-token distribution is flat (e.g. zero weights loaded).

        Scores a few continuations of a known prompt: a flat distribution gives every
        token the same log-probability, so their mean per-token log-probabilities agree.

        Raises:
            ModelCheckError: they agree to 1e-4.
        """
        if SCORE not in self.capabilities:
            return
        results = self._score([ScoreRequest(CHECK_CONTEXT, c) for c in CHECK_CONTINUATIONS])
        means = [r.logprob / max(1, len(r.token_logprobs)) for r in results]
        if max(means) - min(means) < 1e-4:
            raise ModelCheckError(
                f"{self!r} gives every token the same log-probability ({means[0]:.2f} after "
                f"{CHECK_CONTEXT!r}): its weights did not load (e.g. embeddings missing from "
                "the model folder)"
            )

    def close(self) -> None:  # noqa: B027 - optional hook: a runner that holds nothing needs none
        """Release connections or memory."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def require(runner: Runner, capability: str) -> None:
    """Raise `CapabilityError` unless ``runner`` declares ``capability``.

    Callers use it to refuse a run before queueing it; ``runner`` may also be a
    runner class, whose declared capabilities are then checked.

    Raises:
        CapabilityError: the runner cannot do ``capability``.
        ValueError: ``capability`` is not one of `CAPABILITIES`.
    """
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; known: {sorted(CAPABILITIES)}")
    if capability not in runner.capabilities:
        raise CapabilityError(
            f"the {runner.name} runner cannot {capability} "
            f"(it can: {', '.join(sorted(runner.capabilities)) or 'nothing'})"
        )
