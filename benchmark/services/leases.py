"""Work-unit leases: claim a unit, keep it while working on it, give it back.

A claim gives the worker a lease token. Every write of the work checks the token (and that
the lease has not run out) in the same transaction, so a worker that lost its unit to
another one stops writing; the end of the unit is recorded only by the holder. A thread
renews the lease while the unit is worked on (model loading included), so only a worker
that died loses its lease. A lost lease is not a failed attempt: attempts count errors
raised by the work; a unit whose workers keep dying is failed after `MAX_LOST_LEASES`.
"""

from __future__ import annotations

import logging
import threading
import uuid

from django.conf import settings
from django.db import connections, transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from benchmark.models import ModelRun, RunState, UnitState, WorkUnit
from benchmark.services.local_workers import worker_id
from benchmark.services.runs import ACTIVE_RUN_STATES, MAX_ATTEMPTS, lease

log = logging.getLogger(__name__)

# A unit whose worker died this many times is failed (e.g. it runs the machine out of memory).
MAX_LOST_LEASES = 10


class Stop(Exception):
    """The run was cancelled, paused or failed while this unit was working."""


class LeaseLost(Stop):
    """Another worker holds this unit now: this one must not write anything more."""


def claim(unit_id: int) -> WorkUnit | None:
    """Take the lease on a unit if it has work left and nobody else holds it.

    Returns:
        The unit (with ``lease_token`` set and its run loaded), or None when there is
        nothing to do here.
    """
    now = timezone.now()
    with transaction.atomic():
        unit = (
            WorkUnit.objects.select_for_update(of=("self",))
            .select_related("run", "run__endpoint", "run__task_version", "run__dataset")
            .filter(pk=unit_id)
            .first()
        )
        if unit is None or unit.state in (UnitState.DONE, UnitState.FAILED, UnitState.CANCELLED):
            return None
        if unit.run.state not in ACTIVE_RUN_STATES:
            return None
        if unit.state == UnitState.RUNNING and unit.lease_until and unit.lease_until > now:
            return None
        error = ""
        if unit.state == UnitState.RUNNING:
            # Its lease ran out: the worker died (or froze). Not an attempt of the work.
            unit.lost_leases += 1
            if unit.lost_leases >= MAX_LOST_LEASES:
                error = (
                    f"its worker stopped {unit.lost_leases} times before finishing it "
                    "(killed, or out of memory?)"
                )
        if not error and unit.attempts >= MAX_ATTEMPTS:
            error = unit.last_error or f"no attempts left of {MAX_ATTEMPTS}"
        if error:
            unit.state, unit.lease_until, unit.lease_token = UnitState.FAILED, None, ""
            unit.last_error = error[:2000]
        else:
            unit.state, unit.lease_until = UnitState.RUNNING, now + lease()
            unit.lease_token = uuid.uuid4().hex
            unit.worker = worker_id()
        unit.save(
            update_fields=[
                "lost_leases",
                "state",
                "lease_until",
                "lease_token",
                "last_error",
                "worker",
                "updated",
            ]
        )
    if error:
        maybe_finish(unit.run_id)
        return None
    # After the unit's transaction: locks are always taken run first, then units (as
    # cancel, resume and retry do), so a claim never waits for a run while holding a unit.
    # The first start is kept: resumes and retries only move `resumed`.
    ModelRun.objects.filter(pk=unit.run_id, state=RunState.QUEUED).update(
        state=RunState.RUNNING,
        started=Coalesce(F("started"), Value(now, output_field=DateTimeField())),
    )
    return unit


def hold(unit: WorkUnit) -> None:
    """Check that this worker still holds the unit and extend its lease.

    Call it inside the transaction that writes the work: the row stays locked until the
    write commits, so no other worker can claim the unit in between.

    Raises:
        LeaseLost: the lease ran out or another worker took the unit.
    """
    now = timezone.now()
    held = WorkUnit.objects.filter(
        pk=unit.pk, lease_token=unit.lease_token, state=UnitState.RUNNING, lease_until__gt=now
    ).update(lease_until=now + lease())
    if not held:
        raise LeaseLost(f"unit {unit.pk} is no longer held by this worker")


def renew(unit: WorkUnit) -> bool:
    """Extend the lease if this worker still holds the unit; False once it does not."""
    now = timezone.now()
    return bool(
        WorkUnit.objects.filter(
            pk=unit.pk, lease_token=unit.lease_token, state=UnitState.RUNNING
        ).update(lease_until=now + lease())
    )


class LeaseKeeper:
    """Renew a unit's lease from a thread every third of a lease while the unit is worked on.

    Loading a model or a long provider call can outlast a lease; without this a second
    worker would claim a unit whose first worker is alive and writing.
    """

    def __init__(self, unit: WorkUnit, every: float | None = None):
        self.unit = unit
        self.every = every if every is not None else lease().total_seconds() / 3
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{unit.pk}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    if not renew(self.unit):
                        self.lost = True
                        return
                except Exception:  # a database hiccup: try again at the next beat
                    log.exception("renewing the lease of unit %s", self.unit.pk)
        finally:
            connections.close_all()  # this thread's connections only


def finish(unit: WorkUnit) -> bool:
    """Mark the unit done if this worker still holds it; False if it lost it."""
    done = WorkUnit.objects.filter(
        pk=unit.pk, lease_token=unit.lease_token, state=UnitState.RUNNING
    ).update(state=UnitState.DONE, lease_until=None, lease_token="", last_error="")
    if done:
        maybe_finish(unit.run_id)
    return bool(done)


def give_back(unit: WorkUnit) -> None:
    """Leave the unit pending for later (the run was paused or cancelled)."""
    WorkUnit.objects.filter(
        pk=unit.pk, lease_token=unit.lease_token, state=UnitState.RUNNING
    ).update(state=UnitState.PENDING, lease_until=None, lease_token="")


def release_after_error(unit: WorkUnit, error: str) -> str:
    """Count a failed attempt; queue the unit again after a backoff, or fail it.

    Returns:
        ``retry``, ``failed``, or ``lost`` (another worker holds the unit: nothing changed).
    """
    from benchmark import actors

    error = error[:2000] or "the work failed without a message"
    with transaction.atomic():
        row = (
            WorkUnit.objects.select_for_update()
            .filter(pk=unit.pk, lease_token=unit.lease_token, state=UnitState.RUNNING)
            .first()
        )
        if row is None:
            return "lost"
        row.attempts += 1
        final = row.attempts >= MAX_ATTEMPTS
        row.state = UnitState.FAILED if final else UnitState.PENDING
        row.lease_until = None
        row.lease_token = ""
        row.last_error = error
        row.save(
            update_fields=[
                "attempts",
                "state",
                "lease_until",
                "lease_token",
                "last_error",
                "updated",
            ]
        )
    if final:
        maybe_finish(unit.run_id)
        return "failed"
    # Back off before the next attempt: 2 s, 4 s, … (the lease is free meanwhile).
    delay_ms = int(settings.RETRY_BACKOFF_SECONDS * 1000 * 2 ** (row.attempts - 1))
    actors.send_unit(unit.run.endpoint.queue_name, unit.pk, delay_ms=delay_ms)
    return "retry"


def fail_run(run: ModelRun, unit: WorkUnit, message: str) -> None:
    """Stop a run that cannot go on (the endpoint refuses or cannot be reached)."""
    with transaction.atomic():
        ModelRun.objects.filter(pk=run.pk).update(
            state=RunState.FAILED, error=message[:4000], finished=timezone.now()
        )
        WorkUnit.objects.filter(pk=unit.pk, lease_token=unit.lease_token).update(
            last_error=message[:2000]
        )
        run.units.filter(state__in=[UnitState.PENDING, UnitState.RUNNING]).update(
            state=UnitState.CANCELLED, lease_until=None, lease_token=""
        )


def maybe_finish(run_id: int) -> None:
    """Mark a run completed once no unit is pending or running; failed units are listed."""
    with transaction.atomic():
        # NO KEY UPDATE: see `benchmark.services.runs.cancel_run`.
        run = ModelRun.objects.select_for_update(no_key=True).get(pk=run_id)
        if run.state not in ACTIVE_RUN_STATES:
            return
        if run.units.filter(state__in=[UnitState.PENDING, UnitState.RUNNING]).exists():
            return
        failed = list(run.units.filter(state=UnitState.FAILED).values_list("index", "last_error"))
        run.state = RunState.COMPLETED
        run.finished = timezone.now()
        run.error = ""
        if failed:
            run.error = f"{len(failed)} unit(s) failed: " + "; ".join(
                f"unit {i}: {e}" for i, e in failed[:5]
            )
        run.save(update_fields=["state", "finished", "error"])
