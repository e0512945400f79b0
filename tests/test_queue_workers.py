"""The queue with real processes: Redis, `manage.py rundramatiq` and the test database.

A slow OpenAI-compatible server on loopback makes the run long enough to kill the
workers (SIGKILL) in the middle, again and again; the workers left or restarted finish
it. Checks: exactly one response per (item, sample), every unit done, no attempt used up
by a kill, the run's state truthful, and no call repeated for work that was recorded.
Runs queued from this process use its in-memory broker, so their messages are lost: the
workers must find them through the database (the reconcile loop), as after a crash.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

from benchmark.models import ModelEndpoint, Provider, RunState
from benchmark.services.runs import queue_run
from benchmark.services.tasks import load_tasks
from tests.runners.servers import OpenAIServer

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/14"

ITEMS = "\n".join(f"  - {{key: q{i}, text: Statement number {i}., scale: X}}" for i in range(40))
SPEC = f"""\
slug: forty
family: test
kind: questionnaire
title: Forty statements
instructions: Rate each statement from 1 to 3.
prompt:
  trial: '{{number}}. {{text}} <<{{answer}}>>'
response_scale: {{min: 1, max: 3}}
scales:
  X: {{name: X}}
items:
{ITEMS}
"""


pytestmark = pytest.mark.django_db(transaction=True)


def start_worker(
    env: dict,
    queues=("api", "default"),
    processes: int = 1,
    threads: int = 4,
    shutdown_ms: int = 600_000,
    log: Path | None = None,
) -> subprocess.Popen:
    """``manage.py rundramatiq`` in its own process group; its output appended to ``log``."""
    command = ["rundramatiq", "--processes", str(processes), "--threads", str(threads)]
    command += ["--worker-shutdown-timeout", str(shutdown_ms), "--queues", *queues]
    return start_command(command, env, log)


def start_command(command: list[str], env: dict, log: Path | None) -> subprocess.Popen:
    out = log.open("a") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if log:
            out.close()


def wait_ready(log: Path, processes: int, timeout: float = 120) -> None:
    """Wait until ``processes`` worker processes logged to ``log`` that they are ready."""
    assert wait_for(lambda: log.read_text().count("ready for action") >= processes, timeout), (
        f"workers not ready:\n{log.read_text()[-3000:]}"
    )


def worker_env() -> dict:
    """The environment of a worker process: this test database, Redis, short leases."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    else:
        database_url = f"sqlite:///{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "BROKER_URL": REDIS_URL,
        "HF_HUB_OFFLINE": "1",
        # Short leases so the killed worker's units are taken over within seconds; a
        # reconcile pass every half second, and short backoffs between attempts.
        "GEPPETTO_UNIT_LEASE_SECONDS": "3",
        "GEPPETTO_RECONCILE_SECONDS": "0.5",
        "GEPPETTO_RETRY_BACKOFF_SECONDS": "0.25",
    }


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_kill_9_mid_run_then_resume_without_duplicates(tmp_path, tiny_llama):
    redis.Redis.from_url(REDIS_URL).flushdb()
    path = tmp_path / "forty.yaml"
    path.write_text(SPEC)
    version = load_tasks([path])[0].version
    env = worker_env()
    with OpenAIServer(model_path=tiny_llama, latency=0.15) as server:
        endpoint = ModelEndpoint.objects.create(
            name="slow-api",
            provider=Provider.OPENAI,
            model="tiny",
            settings={"base_url": server.url, "max_concurrency": 4, "capabilities": ["sample"]},
        )
        # This process's broker is the in-memory one, so these messages go nowhere: the
        # worker finds the units through the database when it boots (the reconciler).
        run = queue_run(
            endpoint=endpoint,
            task_version=version,
            scoring_mode="sampled",
            samples=2,
            batch_size=5,
        )
        expected = 80
        worker = start_worker(env)
        try:
            assert wait_for(lambda: run.responses.count() >= 20, 120), (
                "first worker made no progress"
            )
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
            done_at_kill = run.responses.count()
            calls_at_kill = server.calls
            assert done_at_kill < expected, "the run finished before the kill: make it slower"
            worker = start_worker(env)
            assert wait_for(
                lambda: run.__class__.objects.get(pk=run.pk).state == RunState.COMPLETED, 240
            ), "the run did not complete after the restart"
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        run.refresh_from_db()
        keys = list(run.responses.values_list("item_key", "sample_index"))
        assert len(keys) == expected
        assert len(set(keys)) == expected
        # Every call whose answer was recorded before the kill came from the cache afterwards:
        # at most the calls in flight at the kill (4 threads) were made twice.
        print(f"done at kill {done_at_kill}, calls at kill {calls_at_kill}, total {server.calls}")
        assert server.calls <= expected + 4
        assert server.calls - calls_at_kill <= expected - done_at_kill + 4


def test_cancel_budget_and_poison_with_a_real_worker(tmp_path, tiny_llama):
    from decimal import Decimal

    from benchmark.models import UnitState
    from benchmark.services.runs import cancel_run

    redis.Redis.from_url(REDIS_URL).flushdb()
    path = tmp_path / "forty.yaml"
    path.write_text(SPEC.replace("Statement number 7.", "Statement POISON 7."))
    version = load_tasks([path])[0].version
    with OpenAIServer(model_path=tiny_llama, latency=0.05) as server:
        common = {"model": "tiny", "provider": Provider.OPENAI}
        settings = {"base_url": server.url, "capabilities": ["sample"], "max_retries": 0}
        plain = ModelEndpoint.objects.create(name="plain", settings=settings, **common)
        priced = ModelEndpoint.objects.create(
            name="priced", settings=settings, price_input_per_mtok=Decimal("1000"), **common
        )
        sampled = {"task_version": version, "scoring_mode": "sampled", "batch_size": 5}
        poisoned = queue_run(endpoint=plain, samples=1, **sampled)
        budgeted = queue_run(endpoint=priced, samples=1, budget_usd=Decimal("0.05"), **sampled)
        cancelled = queue_run(endpoint=plain, samples=20, **sampled)
        worker = start_worker(worker_env())
        try:
            assert wait_for(lambda: cancelled.responses.count() >= 10, 120)
            cancel_run(run=cancelled)
            stopped_at = cancelled.responses.count()
            assert wait_for(
                lambda: (
                    type(poisoned).objects.get(pk=poisoned.pk).state == RunState.COMPLETED
                    and type(budgeted).objects.get(pk=budgeted.pk).state == RunState.PAUSED
                ),
                120,
            ), "the poisoned run did not finish or the budget did not pause"
            time.sleep(2)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        # Cancelled: at most the items in flight were finished after the cancel.
        cancelled.refresh_from_db()
        assert cancelled.state == RunState.CANCELLED
        assert cancelled.responses.count() <= stopped_at + 4 * 5
        assert cancelled.responses.count() < 800
        # Poison: its unit failed after 3 attempts, every other item was answered.
        poisoned.refresh_from_db()
        bad = poisoned.units.get(payload__contains=["q7"])
        assert (bad.state, bad.attempts) == (UnitState.FAILED, 3)
        assert poisoned.responses.count() == 39
        assert f"1 unit(s) failed: unit {bad.index}: item q7: " in poisoned.error
        # Budget: paused once the cost reached it, without finishing.
        budgeted.refresh_from_db()
        assert budgeted.cost_usd >= Decimal("0.05")
        assert budgeted.responses.count() < 40


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (dramatiq's worker processes)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def kill(worker: subprocess.Popen) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)


def holds(run, worker: subprocess.Popen) -> bool:
    """Whether a process of this `rundramatiq` holds a unit of the run (a kill is mid-unit)."""
    from benchmark.models import UnitState

    pids = {str(pid) for pid in children(worker.pid)}
    holders = run.units.filter(state=UnitState.RUNNING).values_list("worker", flat=True)
    return any(h.rsplit(":", 1)[-1] in pids for h in holders)


def state_of(run) -> tuple[str, int]:
    run = type(run).objects.get(pk=run.pk)
    return run.state, run.responses.count()


def test_a_run_queued_after_the_workers_started_survives_repeated_kill_9(tmp_path, tiny_llama):
    """Issue 15, items 1 and 3: one of two workers dies, then all of them, three times."""
    from benchmark.models import UnitState
    from benchmark.services.progress import run_status

    redis.Redis.from_url(REDIS_URL).flushdb()
    path = tmp_path / "forty.yaml"
    path.write_text(SPEC)
    version = load_tasks([path])[0].version
    env = worker_env()
    with OpenAIServer(model_path=tiny_llama, latency=0.1) as server:
        endpoint = ModelEndpoint.objects.create(
            name="slow-api",
            provider=Provider.OPENAI,
            model="tiny",
            settings={"base_url": server.url, "max_concurrency": 4, "capabilities": ["sample"]},
        )
        log = tmp_path / "workers.log"
        workers = [start_worker(env, threads=2, log=log), start_worker(env, threads=2, log=log)]
        try:
            wait_ready(log, 2)  # both workers are up, and found no run
            run = queue_run(
                endpoint=endpoint,
                task_version=version,
                scoring_mode="sampled",
                samples=1,
                batch_size=10,
            )
            expected = 40
            started = time.monotonic()
            # Round 1: one worker dies mid-unit; the other one must take its units over.
            assert wait_for(
                lambda: run.responses.count() >= 6 and any(holds(run, w) for w in workers), 60
            ), "no progress"
            victim = next(w for w in workers if holds(run, w))
            print(f"{time.monotonic() - started:.1f} first kill at {state_of(run)}")
            workers.remove(victim)
            kill(victim)
            assert wait_for(lambda: state_of(run)[1] >= 14, 60), "the survivor stalled"
            print(f"{time.monotonic() - started:.1f} survivor went on {state_of(run)}")
            # Rounds 2 and 3: every worker dies mid-unit, and comes back.
            for floor in (20, 28):
                assert wait_for(
                    lambda f=floor, ws=workers: (
                        state_of(run)[1] >= f and any(holds(run, w) for w in ws)
                    ),
                    60,
                ), "no progress"
                done_at_kill = state_of(run)[1]
                assert done_at_kill < expected, "the run finished before the kill"
                for worker in workers:
                    kill(worker)
                print(f"{time.monotonic() - started:.1f} killed all at {state_of(run)}")
                workers = [start_worker(env, threads=4)]
            assert wait_for(lambda: state_of(run)[0] == RunState.COMPLETED, 90), (
                f"not completed: {state_of(run)}"
            )
            elapsed = time.monotonic() - started
        finally:
            for worker in workers:
                kill(worker)
    run.refresh_from_db()
    keys = list(run.responses.values_list("item_key", "sample_index"))
    assert len(keys) == len(set(keys)) == expected
    units = list(run.units.values_list("state", "attempts", "lost_leases", "last_error"))
    assert {u[0] for u in units} == {UnitState.DONE}
    assert {u[1] for u in units} == {0}  # a kill is not a failed attempt
    assert sum(u[2] for u in units) >= 3  # the kills were seen, as lost leases
    assert (run.error, run_status(run)) == ("", "Completed")
    print(f"{expected} responses through 3 rounds of kill -9 in {elapsed:.1f} s")
    assert server.calls <= expected + 3 * 4  # at most the calls in flight at each kill again


def local_run(tmp_path, tiny_llama, items: int, slug: str, **options):
    """An empty Redis and a run of the first ``items`` items on a local tiny-model endpoint."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    path = tmp_path / f"{slug}.yaml"
    cut = f"  - {{key: q{items + 1},"
    path.write_text(SPEC.split(cut)[0].replace("slug: forty", f"slug: {slug}"))
    version = load_tasks([path])[0].version
    endpoint = ModelEndpoint.objects.create(
        name="tiny-local", provider=Provider.HF, model=str(tiny_llama)
    )
    return queue_run(endpoint=endpoint, task_version=version, batch_size=2, **options)


def test_a_local_only_worker_resumes_a_run_and_a_restarted_one_finishes_it(tmp_path, tiny_llama):
    """Issue 15, items 2, 4 and 7: `--queues local` finds the run; a SIGKILL of one child
    (while the model loads) stops the whole `rundramatiq`, and once restarted, as its
    supervisor does, it finishes the run."""
    from benchmark.models import UnitState

    run = local_run(tmp_path, tiny_llama, 11, "twelve", scoring_mode="sampled", samples=1)
    expected = 12
    env = worker_env()
    local = {"queues": ("local",), "processes": 2, "threads": 1, "shutdown_ms": 2000}
    t0 = time.monotonic()
    worker = start_worker(env, **local)
    try:
        # The worst moment: a unit is claimed and its worker is loading the model.
        assert wait_for(lambda: run.units.filter(state=UnitState.RUNNING).exists(), 60), (
            "a local-only worker never picked the run up"
        )
        before_kill = run.responses.count()
        assert len(children(worker.pid)) == 2
        # The process that holds the unit dies (an idle one would leave the other loading).
        held = run.units.filter(state=UnitState.RUNNING).values_list("worker", flat=True)
        loading = [pid for pid in children(worker.pid) if f":{pid}|" in "|".join(held) + "|"]
        assert loading, f"no child of {worker.pid} holds the unit: {list(held)}"
        os.kill(loading[0], signal.SIGKILL)
        # dramatiq stops every process when one dies (the others get 2 s to finish their
        # message here): a supervisor must start it again.
        assert worker.wait(60) != 0
        done_at_kill = run.responses.count()
        assert done_at_kill < expected
        print(f"{time.monotonic() - t0:.1f} s: rundramatiq exited after the kill")
        worker = start_worker(env, **local)
        assert wait_for(lambda: state_of(run)[0] == RunState.COMPLETED, 120), (
            f"not completed after the restart: {state_of(run)}"
        )
    finally:
        kill(worker)
    print(f"{time.monotonic() - t0:.1f} s: done; responses at the kill: {before_kill}")
    run.refresh_from_db()
    keys = list(run.responses.values_list("item_key", "sample_index"))
    assert len(keys) == len(set(keys)) == expected
    units = list(run.units.values_list("state", "attempts"))
    assert set(units) == {(UnitState.DONE, 0)}
    assert run.error == ""


def test_local_workers_one_per_core_share_a_run_and_each_loads_the_model_once(tmp_path, tiny_llama):
    """`runlocalworkers --cpu-workers 2`: two processes, each pinned to a core with one torch
    thread, both take units of one run (one message at a time), each loads the model once."""
    import re

    from dramatiq.brokers.redis import RedisBroker

    from benchmark import actors
    from benchmark.services.local_workers import own_cores, plan_local_workers

    if len(own_cores()) < 2:
        pytest.skip("needs two cores")
    run = local_run(tmp_path, tiny_llama, 15, "sixteen")
    log = tmp_path / "local.log"
    command = ["runlocalworkers", "--cpu-workers", "2", "--worker-shutdown-timeout", "2000"]
    workers = start_command(command, worker_env(), log)
    try:
        wait_ready(log, 2)
        # Sent to Redis as a web process would (this process's own broker is in memory).
        broker = RedisBroker(url=REDIS_URL)
        for unit_id in run.units.values_list("pk", flat=True):
            broker.enqueue(actors.run_local_unit.message(unit_id))
        assert wait_for(lambda: state_of(run)[0] == RunState.COMPLETED, 120), (
            f"not completed: {state_of(run)}\n{log.read_text()[-3000:]}"
        )
    finally:
        kill(workers)
    text = log.read_text()
    assert "local worker cpu 0: pid" in text and "local worker cpu 1: pid" in text
    holders = set(run.units.values_list("worker", flat=True))
    loads = re.findall(
        r"model loaded: endpoint \d+ \(hf\) in [\d.]+ s by (\S+), (\d+) torch thread\(s\), "
        r"cores (\S+)",
        text,
    )
    print(f"units per process: {list(run.units.values_list('worker', flat=True))}")
    assert len(holders) == 2  # both processes took units
    assert sorted(w for w, _, _ in loads) == sorted(holders)  # each loaded the model once
    # Each pinned to its half of the cores, with as many torch threads (1 and 1 on 2 cores).
    plan = plan_local_workers(cpu_workers=2)
    assert sorted((threads, cores) for _, threads, cores in loads) == sorted(
        (w.env["GEPPETTO_TORCH_THREADS"], ",".join(map(str, w.cores))) for w in plan
    )
    keys = list(run.responses.values_list("item_key", "sample_index"))
    assert len(keys) == len(set(keys)) == 16
    assert run.units.exclude(state="done").count() == 0
