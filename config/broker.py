"""Broker selection for dramatiq.

``BROKER_URL`` picks the broker: ``redis://…`` → Redis, ``amqp://…`` → RabbitMQ,
empty → the embedded mode, where messages stay in the web process and an
in-process worker consumes them (the database remains the source of truth for
jobs, so nothing is lost when that process stops).
"""

import logging
import os
import threading
from datetime import timedelta
from urllib.parse import urlparse

from dramatiq.middleware import Middleware

log = logging.getLogger(__name__)

MIDDLEWARE = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Retries",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
]
# Every worker process of a real broker runs the reconcile loop, whatever queues it reads
# (a `--queues local` worker too); the embedded mode starts it from `manage.py serve`.
WORKER_MIDDLEWARE = [*MIDDLEWARE, "config.broker.ReconcileLoop", "config.broker.LocalQueuePrefetch"]


def start_reconcile_loop(stop: threading.Event) -> threading.Thread:
    """Start a thread that reconciles runs every ``RECONCILE_SECONDS`` until ``stop`` is set.

    Each process runs one; a row in the database lets one process per period do the work
    (`benchmark.services.runs.reconcile_if_due`), so it costs one UPDATE per process and
    period, and the units of a dead worker are queued again within a lease and a period.
    """

    def loop():
        from django.conf import settings
        from django.db import connections

        from benchmark.services.runs import reconcile_if_due  # late: it needs the models

        every = settings.RECONCILE_SECONDS
        while True:
            try:
                reconcile_if_due(every=timedelta(seconds=every))
            except Exception:  # the database may be restarting: try again next period
                log.exception("reconcile loop")
            finally:
                connections.close_all()  # this thread's connections only
            if stop.wait(every):
                return

    thread = threading.Thread(target=loop, name="reconcile-loop", daemon=True)
    thread.start()
    return thread


class ReconcileLoop(Middleware):
    """Run the reconcile loop in each worker process, from boot to shutdown."""

    def __init__(self):
        self.stop = threading.Event()

    def after_worker_boot(self, broker, worker):
        """Start the loop (its first pass runs now, if no process ran one recently)."""
        start_reconcile_loop(self.stop)

    def before_worker_shutdown(self, broker, worker):
        """Stop the loop."""
        self.stop.set()


# How long (ms) the consumer of a local-only worker sleeps at most before it looks for the
# next message; dramatiq's 1,000 ms default left a one-message worker idle up to a second
# between units (a quarter of its time on an exact IPIP-50 run with 1.2-s units).
LOCAL_CONSUMER_TIMEOUT_MS = 100


class LocalQueuePrefetch(Middleware):
    """A worker that reads only the ``local`` queue takes one message per thread at a time.

    dramatiq prefetches twice as many messages as a process has threads; with local models
    that let the first process to boot hold units that another process, with its own model
    copy on another device, could have worked on. With one message in hand, its consumer
    cannot fetch the next until the unit is done, and then waits out the backoff it grew
    meanwhile (up to the worker timeout): that timeout is lowered to
    `LOCAL_CONSUMER_TIMEOUT_MS`. ``dramatiq_queue_prefetch`` and
    ``dramatiq_worker_timeout`` in the environment still win.
    """

    def before_worker_boot(self, broker, worker):
        """Lower the prefetch and the consumers' longest sleep before they start."""
        if worker.consumer_whitelist != {"local"}:
            return
        if not os.environ.get("dramatiq_queue_prefetch"):  # noqa: SIM112 (dramatiq's name)
            worker.queue_prefetch = worker.worker_threads
        if not os.environ.get("dramatiq_worker_timeout"):  # noqa: SIM112 (dramatiq's name)
            worker.worker_timeout = LOCAL_CONSUMER_TIMEOUT_MS


def dramatiq_broker_settings(url: str) -> dict:
    """Return the ``DRAMATIQ_BROKER`` setting for a broker URL.

    Args:
        url: ``redis://``, ``rediss://`` or ``amqp(s)://`` URL; empty for the embedded broker.

    Returns:
        The dict django-dramatiq reads.

    Raises:
        ValueError: the URL's scheme is not one Geppetto can use.
    """
    if not url:
        return {
            "BROKER": "dramatiq.brokers.stub.StubBroker",
            "OPTIONS": {},
            "MIDDLEWARE": MIDDLEWARE,
        }
    scheme = urlparse(url).scheme
    if scheme in {"redis", "rediss"}:
        return {
            "BROKER": "dramatiq.brokers.redis.RedisBroker",
            "OPTIONS": {"url": url},
            "MIDDLEWARE": WORKER_MIDDLEWARE,
        }
    if scheme in {"amqp", "amqps"}:
        return {
            "BROKER": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
            "OPTIONS": {"url": url},
            "MIDDLEWARE": WORKER_MIDDLEWARE,
        }
    raise ValueError(
        f"BROKER_URL must start with redis://, rediss://, amqp:// or amqps://, got {scheme!r}"
    )


_embedded_worker = None


def start_embedded_worker(threads: int = 2):
    """Start the in-process dramatiq worker of the embedded mode (once per process).

    It consumes every queue of the in-memory broker, including queues declared after
    it starts. Work that was queued when a previous process stopped is not lost: the
    database is the source of truth for jobs and a reconciler re-enqueues it.

    Args:
        threads: worker threads.

    Returns:
        The running `dramatiq.Worker`.

    Raises:
        RuntimeError: a real broker is configured (run ``manage.py rundramatiq`` instead).
    """
    import atexit

    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    global _embedded_worker
    broker = dramatiq.get_broker()
    if not isinstance(broker, StubBroker):
        raise RuntimeError("BROKER_URL is set: run workers with `manage.py rundramatiq`")
    if _embedded_worker is None:
        _embedded_worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
        _embedded_worker.start()
        atexit.register(stop_embedded_worker)
    return _embedded_worker


def stop_embedded_worker() -> None:
    """Stop the in-process worker, if one runs (waits for messages being processed)."""
    global _embedded_worker
    if _embedded_worker is not None:
        worker = _embedded_worker
        worker.stop()
        # A stopped worker's hook stays on the broker and would start a consumer for every
        # queue declared later, which takes messages that nothing then processes (seen when
        # a second worker starts in the same process).
        broker = worker.broker
        broker.middleware[:] = [
            m for m in broker.middleware if getattr(m, "worker", None) is not worker
        ]
        _embedded_worker = None
