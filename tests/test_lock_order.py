"""Row locks: run first, then units, on every path, so no two transactions wait in a circle.

Each test pauses one transaction (a claim, a priced write) right after it took its first
row lock, starts a cancel in a second connection, waits until PostgreSQL reports that
connection waiting for a lock, then lets the first go on. Taken in the other order (a
unit, then its run), the two would deadlock and PostgreSQL would abort one of them.
"""

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections

from benchmark.models import ModelEndpoint, ModelResponse, Provider, RunState, UnitState
from benchmark.services import leases
from benchmark.services.responses import Context, Outcome
from benchmark.services.runs import cancel_run, queue_run
from tests.test_queue_recovery import FOUR
from tests.test_runs import load

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run(tiny_llama, tmp_path):
    if connection.vendor != "postgresql":
        # SQLite locks the whole database for each write: rows cannot wait in a circle.
        pytest.skip("row locks are PostgreSQL's (CI runs this on PostgreSQL)")
    endpoint = ModelEndpoint.objects.create(
        name="priced",
        provider=Provider.HF,
        model=str(tiny_llama),
        revision="r1",
        price_input_per_mtok=Decimal("1.0"),
        price_output_per_mtok=Decimal("2.0"),
    )
    return queue_run(endpoint=endpoint, task_version=load(tmp_path, FOUR, "four"), batch_size=4)


class PauseAfter:
    """An execute wrapper that holds its thread after the first statement ``first`` picks.

    The transaction stays open (its locks held) until `go` is set.
    """

    def __init__(self, first):
        self.first = first
        self.paused = threading.Event()
        self.go = threading.Event()

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not self.paused.is_set() and self.first(sql):
            self.paused.set()
            assert self.go.wait(30), "the test never let the paused transaction go on"
        return result


def waiting_for_a_lock() -> int:
    """Connections to this database that wait for a row or table lock now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def interleave(first_statement, first, second) -> dict:
    """Run ``first`` paused after ``first_statement``, ``second`` meanwhile; their outcomes."""
    pause = PauseAfter(first_statement)
    outcome = {}

    def in_thread(name, call, wrapper=None):
        try:
            if wrapper is None:
                outcome[name] = call()
            else:
                with connection.execute_wrapper(wrapper):
                    outcome[name] = call()
        except Exception as exc:  # a deadlock shows up here as an OperationalError
            outcome[name] = exc
        finally:
            connections.close_all()

    a = threading.Thread(target=in_thread, args=("first", first, pause))
    a.start()
    assert pause.paused.wait(30), "the first transaction never reached its pause"
    b = threading.Thread(target=in_thread, args=("second", second))
    b.start()
    for _ in range(300):  # until the second waits for a lock the first holds (≤ 30 s)
        if waiting_for_a_lock() or not b.is_alive():
            break
        threading.Event().wait(0.1)
    waited = bool(waiting_for_a_lock())
    pause.go.set()
    a.join(60)
    b.join(60)
    assert not a.is_alive() and not b.is_alive(), "a transaction is still waiting"
    outcome["second waited"] = waited
    return outcome


def test_a_claim_and_a_cancel_do_not_deadlock(run):
    unit = run.units.order_by("index").first()
    outcome = interleave(
        lambda sql: "FOR UPDATE" in sql and "benchmark_workunit" in sql,
        lambda: leases.claim(unit.pk),
        lambda: cancel_run(run=run),
    )
    assert outcome["second waited"], "the cancel never waited for the claim's unit lock"
    assert not isinstance(outcome["first"], Exception), outcome["first"]
    assert not isinstance(outcome["second"], Exception), outcome["second"]
    assert outcome["first"].pk == unit.pk  # claimed before the cancel reached its units
    run.refresh_from_db()
    unit.refresh_from_db()
    assert (run.state, unit.state) == (RunState.CANCELLED, UnitState.CANCELLED)
    assert run.started is None  # the claim's start of the run came after the cancel


def test_a_priced_write_and_a_cancel_do_not_deadlock(run):
    unit = leases.claim(run.units.order_by("index").first().pk)
    context = Context(run=unit.run, unit=unit, spec=None, items=[], runner=None)
    write = Outcome(item_key="q1", sample_index=0, answer="1", prompt_tokens=1000)
    outcome = interleave(
        lambda sql: sql.lstrip().upper().startswith("UPDATE"),
        lambda: context.save(write),
        lambda: cancel_run(run=run),
    )
    assert outcome["second waited"], "the cancel never waited for the write's lock"
    assert not isinstance(outcome["second"], Exception), outcome["second"]
    # The write commits first; its look at the run afterwards races the cancel's commit,
    # so it either stops the unit or leaves that to the next write.
    first = outcome["first"]
    assert first is None or (isinstance(first, leases.Stop) and str(first) == "run is cancelled")
    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    assert run.cost_usd == Decimal("0.001")  # 1,000 input tokens at 1 USD per million
    saved = ModelResponse.objects.get(run=run)
    assert (saved.item_key, saved.answer, saved.cost_usd) == ("q1", "1", Decimal("0.001"))


def test_a_free_write_and_a_cancel_do_not_deadlock(run):
    # A write that costs nothing (a cached answer, an unpriced endpoint) takes no lock on
    # the run before its unit; inserting its response then checks the run's key (FOR KEY
    # SHARE), which a cancel holding the run FOR UPDATE would block: a circle.
    unit = leases.claim(run.units.order_by("index").first().pk)
    context = Context(run=unit.run, unit=unit, spec=None, items=[], runner=None)
    write = Outcome(item_key="q1", sample_index=0, answer="1", cached=True)
    outcome = interleave(
        lambda sql: sql.lstrip().upper().startswith("UPDATE") and "benchmark_workunit" in sql,
        lambda: context.save(write),
        lambda: cancel_run(run=run),
    )
    assert outcome["second waited"], "the cancel never waited for the write's unit lock"
    assert not isinstance(outcome["second"], Exception), outcome["second"]
    first = outcome["first"]
    assert first is None or (isinstance(first, leases.Stop) and str(first) == "run is cancelled")
    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    saved = ModelResponse.objects.get(run=run)
    assert (saved.item_key, saved.answer, saved.cost_usd) == ("q1", "1", Decimal(0))
