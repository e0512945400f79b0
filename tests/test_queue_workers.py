"""The queue with real processes: Redis, `manage.py rundramatiq` and the test database.

A slow OpenAI-compatible server on loopback makes the run long enough to kill the
worker (SIGKILL) in the middle; a second worker finishes it. Checks: exactly one
response per (item, sample), and no call repeated for work that was recorded.
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


def start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "rundramatiq",
            "--processes",
            "1",
            "--threads",
            "4",
            "--queues",
            "api",
            "default",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
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
        # Short leases so the killed worker's units are taken over within seconds.
        "GEPPETTO_UNIT_LEASE_SECONDS": "3",
    }


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
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
