"""What HTTP runners share: a pooled client, rate limits, concurrency, retries.

Retries: 429, 5xx (and Anthropic's 529), timeouts, dropped connections and
unreadable JSON are retried with exponential backoff and full jitter, honouring
``Retry-After``; any other 4xx is final and raised at once with the server's
message. The API key is read from the environment at each request and never put in
an exception, a log line or a repr.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

log = logging.getLogger(__name__)

RETRY_STATUSES = {408, 429, 500, 502, 503, 504, 529}


class ProviderError(RuntimeError):
    """A provider's refusal or failure.

    Args:
        status: the HTTP status (None: no usable answer, e.g. the server was unreachable).
        message: what went wrong, with the server's own message when it sent one.
    """

    def __init__(self, status: int | None, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


class EndpointUnreachable(ProviderError):
    """No connection at all after every retry (connection refused, DNS, connect timeouts).

    A server that accepted the connection but answered too slowly is up: that is a
    plain `ProviderError`, never this.
    """


class MissingCredentials(ProviderError):
    """The environment variable that should hold the API key is not set on this worker."""


class TokenBucket:
    """``rate`` units per second, at most ``capacity`` saved up; a large take runs into debt.

    A take larger than the capacity waits for a full bucket and then leaves it
    negative, so it is let through once and later takes wait for the debt.
    """

    def __init__(self, rate: float, capacity: float, clock=time.monotonic):
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self.level = capacity
        self.stamp = clock()

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` can be taken (0: now). Call with the limiter's lock held."""
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        """Take ``amount`` (after `wait_for` said 0)."""
        self.level -= amount


class RateLimiter:
    """Token buckets for requests and tokens per minute, shared by a runner's threads.

    Each bucket holds one second's worth (at least one request), so requests are
    spread evenly over the minute rather than sent in a burst that the provider's
    own per-second enforcement would refuse.
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        *,
        clock=time.monotonic,
        sleep=time.sleep,
    ):
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self.requests = (
            TokenBucket(requests_per_minute / 60, max(1.0, requests_per_minute / 60), clock)
            if requests_per_minute
            else None
        )
        self.tokens = (
            TokenBucket(tokens_per_minute / 60, max(1.0, tokens_per_minute / 60), clock)
            if tokens_per_minute
            else None
        )

    def acquire(self, tokens: int = 0) -> float:
        """Block until one request of about ``tokens`` tokens fits; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                wait = max(
                    self.requests.wait_for(1) if self.requests else 0.0,
                    self.tokens.wait_for(tokens) if self.tokens and tokens else 0.0,
                )
                if wait <= 0:
                    if self.requests:
                        self.requests.take(1)
                    if self.tokens and tokens:
                        self.tokens.take(tokens)
                    return waited
            # Sleep outside the lock; another thread may take the slot first, then we wait again.
            self.sleep(wait)
            waited += wait


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (a number or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HTTPTransport:
    """A pooled client with the retry loop, the rate limiter and a bounded thread pool."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key_env: str | None,
        auth_header: str,
        auth_prefix: str = "",
        extra_headers: dict | None = None,
        max_concurrency: int = 8,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.auth_header = auth_header
        self.auth_prefix = auth_prefix
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.limiter = RateLimiter(requests_per_minute, tokens_per_minute)
        self.client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers=extra_headers or {},
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
        )
        self.pool = ThreadPoolExecutor(max_workers=max_concurrency)

    def __repr__(self):
        return f"HTTPTransport({self.base_url!r}, key from ${self.api_key_env or '-'})"

    def _headers(self) -> dict:
        if not self.api_key_env:
            return {}
        key = os.environ.get(self.api_key_env)
        if not key:
            raise MissingCredentials(
                None, f"the environment variable {self.api_key_env} is not set on this worker"
            )
        return {self.auth_header: self.auth_prefix + key}

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        jitter = random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))  # noqa: S311
        return max(retry_after or 0.0, jitter)

    def post(
        self, path: str, payload: dict, *, tokens: int = 0, timeout: float | None = None
    ) -> dict:
        """POST JSON and return the decoded answer, retrying what is worth retrying.

        Args:
            path: appended to the base URL.
            payload: the JSON body.
            tokens: about how many tokens the request holds (rate limit).
            timeout: seconds to wait for the answer (None: the client's default). A
                request that timed out is sent again with twice the time: the server is
                up, and the same request will take as long again.

        Raises:
            ProviderError: a final refusal (4xx) or a failure that outlasted the retries.
            EndpointUnreachable: no connection could be made.
        """
        last: ProviderError | None = None
        read = timeout if timeout is not None else self.client.timeout.read
        for attempt in range(self.max_retries + 1):
            self.limiter.acquire(tokens)
            retry_after = None
            try:
                response = self.client.post(
                    path,
                    json=payload,
                    headers=self._headers(),
                    timeout=self.client.timeout if read is None else _timeout(read),
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = EndpointUnreachable(None, f"{type(exc).__name__} from {self.base_url}{path}")
            except httpx.TimeoutException as exc:
                waited = f"within {read:g} s " if read else ""
                last = ProviderError(
                    None,
                    f"{self.base_url}{path} did not answer {waited}({type(exc).__name__}): "
                    "the server is up but slow; raise the endpoint's `timeout`",
                )
                read = read * 2 if read else read
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                last = ProviderError(
                    None, f"{type(exc).__name__} from {self.base_url}{path}: connection dropped"
                )
            else:
                if response.status_code < 300:
                    try:
                        return response.json()
                    except ValueError:
                        last = ProviderError(
                            response.status_code,
                            f"{self.base_url}{path} answered {response.status_code} with "
                            f"unreadable JSON: {response.text[:200]!r}",
                        )
                elif response.status_code in RETRY_STATUSES:
                    retry_after = retry_after_seconds(response.headers.get("retry-after"))
                    last = ProviderError(response.status_code, _message(response))
                else:
                    raise ProviderError(response.status_code, _message(response))
            if attempt < self.max_retries:
                delay = self._backoff(attempt, retry_after)
                log.info("retrying %s%s in %.2f s after: %s", self.base_url, path, delay, last)
                time.sleep(delay)
        raise last

    def map(self, fn, items: list) -> list:
        """``fn`` over ``items`` on the bounded thread pool, results in order."""
        return list(self.pool.map(fn, items))

    def close(self) -> None:
        """Close connections and threads."""
        self.pool.shutdown(wait=True)
        self.client.close()


def _timeout(read: float) -> httpx.Timeout:
    """Connecting takes seconds whatever the request; reading its answer takes ``read``."""
    return httpx.Timeout(read, connect=min(read, 10.0))


def _message(response: httpx.Response) -> str:
    """The server's own error message, short."""
    try:
        body = response.json()
        error = body.get("error", body) if isinstance(body, dict) else body
        detail = error.get("message", error) if isinstance(error, dict) else error
    except ValueError:
        detail = response.text
    return f"HTTP {response.status_code}: {str(detail)[:500]}"
