"""Dramatiq actors: thin wrappers that hand a unit id to the services.

Retries are ours (attempt counter and lease on `WorkUnit`), so dramatiq's own are off.
Local models run on the ``local`` queue (one worker process per device, the model
loaded once per process); HTTP providers on ``api`` (many threads).
"""

import dramatiq

from benchmark.services import execution

# A unit of a large local model can take long; the lease is renewed after every answer.
UNIT_TIME_LIMIT_MS = 6 * 60 * 60 * 1000


@dramatiq.actor(queue_name="local", max_retries=0, time_limit=UNIT_TIME_LIMIT_MS)
def run_local_unit(unit_id: int) -> None:
    """Work on one unit of a run on a local model."""
    execution.execute_unit(unit_id)


@dramatiq.actor(queue_name="api", max_retries=0, time_limit=UNIT_TIME_LIMIT_MS)
def run_api_unit(unit_id: int) -> None:
    """Work on one unit of a run on an HTTP API."""
    execution.execute_unit(unit_id)


@dramatiq.actor(queue_name="default", max_retries=0)
def reconcile() -> None:
    """Re-enqueue units whose lease ran out or whose message was lost (once).

    Workers do this on their own every ``RECONCILE_SECONDS`` (`config.broker.ReconcileLoop`);
    this actor is for asking for it at once.
    """
    from benchmark.services.runs import reconcile_runs

    reconcile_runs()


def send_unit(queue: str, unit_id: int, delay_ms: int | None = None) -> None:
    """Enqueue a unit on the queue of its endpoint."""
    actor = run_local_unit if queue == "local" else run_api_unit
    actor.send_with_options(args=(unit_id,), delay=delay_ms)
