"""Anthropic's Messages API: sampling only (it gives no log-probabilities)."""

from __future__ import annotations

from benchmark.runners.base import CHAT, SAMPLE, Runner, Sample, SampleRequest
from benchmark.runners.http import HTTPTransport

API_VERSION = "2023-06-01"
CHARS_PER_TOKEN = 4


class AnthropicRunner(Runner):
    """Claude models through ``POST /v1/messages``.

    Every request is a chat (a single user message); the API has no ``n``, so ``n``
    samples are ``n`` requests, sent concurrently. It has no seed either: a request's
    ``seed`` is not sent.

    Args:
        model: the model name.
        api_key_env: environment variable holding the key, read at each request.
        base_url: the API's address.
        max_tokens: the most tokens any request may ask for (the API requires a limit;
            a request's own ``max_tokens`` is used when smaller).
        max_concurrency: requests in flight at once.
        requests_per_minute: request rate limit (None: none).
        tokens_per_minute: token rate limit, estimated from the text (None: none).
        timeout: seconds per request before it counts as failed (and is retried).
        max_retries: retries after the first attempt of a transient failure (429, 5xx, 529).
        backoff_base: first backoff ceiling in seconds; it doubles each retry.
        backoff_max: the largest backoff ceiling.
    """

    name = "anthropic"
    capabilities = frozenset({SAMPLE, CHAT})

    def __init__(
        self,
        model: str,
        api_key_env: str = "ANTHROPIC_API_KEY",
        base_url: str = "https://api.anthropic.com",
        max_tokens: int = 1024,
        max_concurrency: int = 8,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ):
        self.model = model
        self.max_tokens = max_tokens
        self.http = HTTPTransport(
            base_url,
            api_key_env=api_key_env,
            auth_header="x-api-key",
            extra_headers={"anthropic-version": API_VERSION},
            max_concurrency=max_concurrency,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )

    def __repr__(self):
        return f"AnthropicRunner({self.model!r}, {self.http!r})"

    def _one(self, request: SampleRequest) -> Sample:
        max_tokens = min(request.max_tokens, self.max_tokens)
        payload = {
            "model": self.model,
            "max_tokens": max_tokens,
            # The API takes temperatures from 0 to 1 only.
            "temperature": min(max(request.temperature, 0.0), 1.0),
            "messages": [{"role": "user", "content": request.prompt}],
        }
        if request.stop:
            payload["stop_sequences"] = list(request.stop)
        body = self.http.post(
            "/v1/messages",
            payload,
            tokens=len(request.prompt) // CHARS_PER_TOKEN + max_tokens,
        )
        text = "".join(
            b.get("text", "") for b in body.get("content") or [] if b.get("type") == "text"
        )
        usage = body.get("usage") or {}
        return Sample(
            text=text,
            finish_reason=body.get("stop_reason"),
            prompt_tokens=usage.get("input_tokens"),
            completion_tokens=usage.get("output_tokens"),
        )

    def _sample(self, requests: list[SampleRequest], n: int) -> list[list[Sample]]:
        flat = self.http.map(self._one, [r for r in requests for _ in range(n)])
        return [flat[i * n : (i + 1) * n] for i in range(len(requests))]

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()
