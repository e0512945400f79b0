"""Any OpenAI-compatible HTTP server: OpenAI, vLLM's server, llama.cpp, Ollama and others.

Exact scoring uses ``/v1/completions`` with ``echo`` and ``logprobs``: the server
returns the log-probability of every prompt token, and the continuation's tokens
are those whose text offset lies at or after the end of the context (a token that
straddles the boundary is counted with the continuation). Servers that do not offer
this are registered with ``capabilities: ["sample", "chat"]`` in the endpoint's
settings and are then scored by sampling.
"""

from __future__ import annotations

from benchmark.runners.base import (
    CHAT,
    SAMPLE,
    SCORE,
    TOKEN_LOGPROBS,
    Runner,
    Sample,
    SampleRequest,
    ScoreRequest,
    ScoreResult,
    SpansRequest,
)
from benchmark.runners.http import HTTPTransport, ProviderError

CHARS_PER_TOKEN = 4


class OpenAIRunner(Runner):
    """Completions and chat completions over HTTP.

    Scoring asks for ``max_tokens: 0`` (nothing generated); a server that refuses it
    with a 400 is asked again with 1, and the runner remembers. A generated token lies
    past the prompt's end and is never counted.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8001`` or, as providers document
            it, ``https://api.openai.com/v1`` (``/v1/…`` is appended once).
        model: the model name the server knows.
        api_key_env: environment variable holding the key, read at each request (None: no key).
        chat: send every sampling request as a chat (for chat-only models).
        max_concurrency: requests in flight at once (threads and pooled connections).
        requests_per_minute: request rate limit (None: none).
        tokens_per_minute: token rate limit, estimated from the text (None: none).
        timeout: seconds to wait for the answer to a small request; a request that
            timed out is sent again with twice the time (the server is up but slow).
        seconds_per_1k_tokens: added to ``timeout`` per thousand tokens of a request
            (prompts and generated tokens), so a batch of long prompts gets the time it
            needs on a slow server instead of being resent.
        max_retries: retries after the first attempt of a transient failure.
        backoff_base: first backoff ceiling in seconds; it doubles each retry.
        backoff_max: the largest backoff ceiling.
        batch_size: prompts per scoring request (the completions API takes a list).
    """

    name = "openai"
    capabilities = frozenset({SCORE, SAMPLE, CHAT, TOKEN_LOGPROBS})

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        chat: bool = False,
        max_concurrency: int = 8,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        timeout: float = 60.0,
        seconds_per_1k_tokens: float = 10.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        batch_size: int = 16,
    ):
        self.model = model
        self.chat = chat
        self.batch_size = batch_size
        self.score_max_tokens = 0
        self.timeout = timeout
        self.seconds_per_1k_tokens = seconds_per_1k_tokens
        self.http = HTTPTransport(
            # Every path below starts with /v1: a base URL that already ends with it is the
            # documented form of most providers, not a request for /v1/v1/….
            base_url.rstrip("/").removesuffix("/v1"),
            api_key_env=api_key_env,
            auth_header="Authorization",
            auth_prefix="Bearer ",
            max_concurrency=max_concurrency,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )

    def __repr__(self):
        return f"OpenAIRunner({self.model!r}, {self.http!r})"

    def timeout_for(self, tokens: int) -> float:
        """Seconds to wait for a request of about ``tokens`` tokens."""
        return self.timeout + self.seconds_per_1k_tokens * tokens / 1000

    def _post(self, path: str, payload: dict, tokens: int) -> dict:
        return self.http.post(path, payload, tokens=tokens, timeout=self.timeout_for(tokens))

    def _echo(self, prompts: list[str]) -> list[dict]:
        """The echoed prompts' log-probabilities, one choice per prompt, in order."""
        payload = {
            "model": self.model,
            "prompt": prompts,
            "echo": True,
            "logprobs": 1,
            "temperature": 0,
        }
        tokens = sum(len(p) for p in prompts) // CHARS_PER_TOKEN
        try:
            body = self._post(
                "/v1/completions", {**payload, "max_tokens": self.score_max_tokens}, tokens
            )
        except ProviderError as exc:
            if exc.status != 400 or self.score_max_tokens:
                raise
            self.score_max_tokens = 1
            body = self._post("/v1/completions", {**payload, "max_tokens": 1}, tokens)
        choices = sorted(body.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != len(prompts):
            raise ProviderError(
                None, f"asked to score {len(prompts)} prompts, got {len(choices)} answers"
            )
        return choices

    def _score_batch(self, batch: list[ScoreRequest]) -> list[ScoreResult]:
        choices = self._echo([r.context + r.continuation for r in batch])
        return [
            _span_score(c, len(r.context), len(r.context) + len(r.continuation))
            for r, c in zip(batch, choices, strict=True)
        ]

    def _batched(self, fn, requests: list) -> list:
        """``fn`` over batches of ``batch_size`` requests, concurrently, results in order."""
        batches = [
            requests[i : i + self.batch_size] for i in range(0, len(requests), self.batch_size)
        ]
        return [result for batch in self.http.map(fn, batches) for result in batch]

    def _score(self, requests: list[ScoreRequest]) -> list[ScoreResult]:
        return self._batched(self._score_batch, requests)

    def _spans_batch(self, batch: list[SpansRequest]) -> list[list[ScoreResult]]:
        choices = self._echo([r.text for r in batch])
        return [
            [_span_score(c, start, end) for start, end in r.spans]
            for r, c in zip(batch, choices, strict=True)
        ]

    def _score_spans(self, requests: list[SpansRequest]) -> list[list[ScoreResult]]:
        """One echoed prompt per text: every span is read from its log-probabilities."""
        return self._batched(self._spans_batch, requests)

    def _sample_one(self, pair: tuple[SampleRequest, int]) -> list[Sample]:
        r, n = pair
        common = {
            "model": self.model,
            "n": n,
            "max_tokens": r.max_tokens,
            "temperature": r.temperature,
        }
        if r.stop:
            common["stop"] = list(r.stop)
        if r.seed is not None:
            common["seed"] = r.seed
        tokens = len(r.prompt) // CHARS_PER_TOKEN + r.max_tokens * n
        if r.chat or self.chat:
            body = self._post(
                "/v1/chat/completions",
                {
                    **common,
                    "messages": [{"role": "user", "content": r.prompt}],
                    "logprobs": True,
                    "top_logprobs": 0,
                },
                tokens,
            )
        else:
            body = self._post(
                "/v1/completions", {**common, "prompt": r.prompt, "logprobs": 1}, tokens
            )
        usage = body.get("usage") or {}
        out = []
        for choice in sorted(body.get("choices", []), key=lambda c: c.get("index", 0)):
            if r.chat or self.chat:
                text = (choice.get("message") or {}).get("content") or ""
                content = (choice.get("logprobs") or {}).get("content") or []
                logprobs = [t.get("logprob") for t in content] or None
            else:
                text = choice.get("text", "")
                logprobs = (choice.get("logprobs") or {}).get("token_logprobs")
            out.append(
                Sample(
                    text=text,
                    token_logprobs=logprobs,
                    finish_reason=choice.get("finish_reason"),
                    prompt_tokens=usage.get("prompt_tokens"),
                    completion_tokens=(usage.get("completion_tokens") // n)
                    if usage.get("completion_tokens") is not None
                    else None,
                )
            )
        if len(out) != n:
            raise ProviderError(None, f"asked for {n} samples, got {len(out)}")
        return out

    def _sample(self, requests: list[SampleRequest], n: int) -> list[list[Sample]]:
        return self.http.map(self._sample_one, [(r, n) for r in requests])

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()


def _span_score(choice: dict, start: int, end: int) -> ScoreResult:
    """Pick the tokens overlapping ``text[start:end]`` out of an echoed prompt's log-probs."""
    lp = choice.get("logprobs") or {}
    tokens, logprobs, offsets = lp.get("tokens"), lp.get("token_logprobs"), lp.get("text_offset")
    if not tokens or logprobs is None or offsets is None:
        raise ProviderError(
            None, "the server returned no prompt log-probabilities (echo + logprobs)"
        )
    picked = [
        (tok, lpv)
        for tok, lpv, off in zip(tokens, logprobs, offsets, strict=False)
        if off < end and off + len(tok) > start and lpv is not None
    ]
    if not picked:
        raise ProviderError(None, "no continuation tokens in the echoed prompt")
    return ScoreResult(
        logprob=float(sum(v for _, v in picked)),
        token_logprobs=[float(v) for _, v in picked],
        tokens=[t for t, _ in picked],
    )
