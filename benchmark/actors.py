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
    """Re-enqueue units whose lease ran out or whose message was lost.

    While runs are active it sends itself again one lease period later, so the units
    of a worker that died are picked up without anyone watching.
    """
    from django.conf import settings

    from benchmark.models import ModelRun
    from benchmark.services.runs import ACTIVE_RUN_STATES, reconcile_runs

    reconcile_runs()
    if ModelRun.objects.filter(state__in=ACTIVE_RUN_STATES).exists():
        reconcile.send_with_options(delay=settings.UNIT_LEASE_SECONDS * 1000)


def send_unit(queue: str, unit_id: int, delay_ms: int | None = None) -> None:
    """Enqueue a unit on the queue of its endpoint."""
    actor = run_local_unit if queue == "local" else run_api_unit
    actor.send_with_options(args=(unit_id,), delay=delay_ms)
