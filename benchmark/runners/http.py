"""What HTTP runners share: a pooled client, rate limits, concurrency, retries.

Retries: 429, 5xx (and Anthropic's 529), timeouts, dropped connections and
unreadable JSON are retried with exponential backoff and full jitter, honouring
``Retry-After``; any other 4xx is final and raised at once with the server's
message. The API key is read from the environment at each request and never put in
an exception, a log line or a repr.

Only variables named on the allow-list (``settings.API_KEY_PREFIXES``) are ever read as a
key, and only hosts on ``settings.ENDPOINT_HOSTS`` are ever contacted: an endpoint
pointed at another variable or host is refused before any request is made, so a
worker's other secrets (``SECRET_KEY``, ``DATABASE_URL``…) never leave it and the
worker cannot be used to reach machines it should not.
"""

from __future__ import annotations

import email.utils
import ipaddress
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


class NotAllowed(MissingCredentials):
    """The endpoint names a key variable or a host that this server does not allow.

    Like a missing key, no retry can fix it, so a run using the endpoint fails early.
    """


# Used when Django settings are not configured (the runners used as a library).
DEFAULT_API_KEY_PREFIXES = ("GEPPETTO_KEY_", "OPENAI_API_KEY", "ANTHROPIC_API_KEY")
DEFAULT_ENDPOINT_HOSTS = ("127.0.0.1", "localhost", "::1", "api.openai.com", "api.anthropic.com")


def _setting(name: str, default):
    from django.conf import settings

    if not settings.configured:
        return default
    return getattr(settings, name, default)


def check_key_env(name: str) -> None:
    """Refuse an API key variable whose name is not on the allow-list.

    Raises:
        NotAllowed: ``name`` does not start with any of ``settings.API_KEY_PREFIXES``.
    """
    prefixes = tuple(_setting("API_KEY_PREFIXES", DEFAULT_API_KEY_PREFIXES))
    if not name or not prefixes or not name.startswith(prefixes):
        raise NotAllowed(
            None,
            f"the key variable {name!r} is not allowed: its name must start with one of "
            f"{list(prefixes)} (GEPPETTO_API_KEY_PREFIXES)",
        )


def host_allowed(host: str, allowed) -> bool:
    """Whether ``host`` is in ``allowed``: a name, ``.domain`` (and subdomains) or a network."""
    host = host.lower().strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in allowed:
        entry = entry.lower().strip()
        if not entry:
            continue
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        elif entry.startswith("."):
            if host == entry[1:] or host.endswith(entry):
                return True
        elif host == entry.strip("[]"):
            return True
    return False


def check_base_url(url: str) -> None:
    """Refuse a base URL that is not http(s) or whose host is not on the allow-list.

    Raises:
        NotAllowed: a bad scheme, no host, or a host outside ``settings.ENDPOINT_HOSTS``.
    """
    try:
        parsed = httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        raise NotAllowed(None, f"the base URL {url!r} is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise NotAllowed(None, f"the base URL {url!r} must be http:// or https:// with a host")
    allowed = list(_setting("ENDPOINT_HOSTS", DEFAULT_ENDPOINT_HOSTS))
    if not host_allowed(parsed.host, allowed):
        raise NotAllowed(
            None,
            f"the host {parsed.host!r} is not allowed; allowed hosts: {allowed} "
            "(GEPPETTO_ENDPOINT_HOSTS)",
        )


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
            # A redirect could lead anywhere; the host check covers base_url only.
            follow_redirects=False,
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
        check_key_env(self.api_key_env)
        key = os.environ.get(self.api_key_env)
        if not key:
            raise MissingCredentials(
                None, f"the environment variable {self.api_key_env} is not set on this worker"
            )
        return {self.auth_header: self.auth_prefix + key}

    def _hide_key(self, text: str) -> str:
        """``text`` without the key: a server may echo what it was sent in its error."""
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return text.replace(key, "[key]") if key and len(key) >= 4 else text

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
            NotAllowed: the host or the key variable is off the allow-lists (nothing is sent).
        """
        last: ProviderError | None = None
        read = timeout if timeout is not None else self.client.timeout.read
        for attempt in range(self.max_retries + 1):
            # Checked at each request, on the URL actually requested: endpoints stored
            # before a setting changed are held to the current lists.
            request = self.client.build_request(
                "POST",
                path,
                json=payload,
                headers=self._headers(),
                timeout=self.client.timeout if read is None else _timeout(read),
            )
            check_base_url(str(request.url))
            self.limiter.acquire(tokens)
            retry_after = None
            try:
                response = self.client.send(request)
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
                            self._hide_key(
                                f"{self.base_url}{path} answered {response.status_code} with "
                                f"unreadable JSON: {response.text[:200]!r}"
                            ),
                        )
                elif response.status_code in RETRY_STATUSES:
                    retry_after = retry_after_seconds(response.headers.get("retry-after"))
                    last = ProviderError(response.status_code, self._hide_key(_message(response)))
                else:
                    raise ProviderError(response.status_code, self._hide_key(_message(response)))
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
