"""The shared HTTP machinery: token buckets on a fake clock, Retry-After parsing."""

import email.utils
import threading
import time

import pytest

from benchmark.runners.http import RateLimiter, TokenBucket, retry_after_seconds


class FakeClock:
    """A clock that only moves when the limiter sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_requests_per_minute_spaces_requests_evenly():
    clock = FakeClock()
    limiter = RateLimiter(
        requests_per_minute=120, tokens_per_minute=None, clock=clock, sleep=clock.sleep
    )
    starts = []
    for _ in range(6):
        limiter.acquire()
        starts.append(clock.now - 1000.0)
    # Two saved up (one second's worth), then one every half second.
    assert starts == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5, 2.0])


def test_tokens_per_minute_waits_for_the_debt_of_a_large_request():
    clock = FakeClock()
    limiter = RateLimiter(None, tokens_per_minute=600, clock=clock, sleep=clock.sleep)
    assert limiter.acquire(5) == 0.0  # 10 tokens per second, 10 saved up
    assert limiter.acquire(25) == pytest.approx(0.5)  # waits for a full bucket, then owes 15
    assert limiter.acquire(10) == pytest.approx(2.5)  # repays 15, then saves 10
    assert limiter.acquire(0) == 0.0  # a request without a token estimate is not held back


def test_a_slow_minute_refills_no_more_than_the_capacity():
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, capacity=3.0, clock=clock)
    bucket.take(3)
    clock.now += 3600
    assert bucket.wait_for(3) == 0.0
    bucket.take(3)
    assert bucket.wait_for(1) == pytest.approx(1.0)


def test_the_limiter_is_shared_safely_by_threads():
    limiter = RateLimiter(requests_per_minute=1200, tokens_per_minute=None)  # 20 a second
    times: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(10):
            limiter.acquire()
            with lock:
                times.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times.sort()
    assert len(times) == 40
    # 20 saved up, 20 more at 20 a second: at least ~1 s in all (lower bound only).
    assert times[-1] - times[0] >= 0.9


def test_retry_after_takes_seconds_or_an_http_date():
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds(later) <= 31
