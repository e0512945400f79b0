"""Local-model workers in one process: how the cores are split, torch threads, prefetch, and
which process took a unit. The real processes are in tests/test_queue_workers.py."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from benchmark.models import ModelEndpoint, Provider
from benchmark.services import leases, local_workers
from benchmark.services.local_workers import plan_local_workers, torch_threads_wanted
from benchmark.services.runs import queue_run
from config.broker import LocalQueuePrefetch
from tests.test_runs import load
from tests.test_specs import GOOD

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(local_workers, "own_cores", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(os, "cpu_count", lambda: 4)


def test_cpu_workers_get_disjoint_cores_and_as_many_torch_threads(four_cores):
    plan = plan_local_workers(cpu_workers=2)
    assert [(w.name, w.cores, w.env) for w in plan] == [
        ("cpu 0", [0, 1], {"GEPPETTO_TORCH_THREADS": "2"}),
        ("cpu 1", [2, 3], {"GEPPETTO_TORCH_THREADS": "2"}),
    ]
    # Cores that do not divide evenly go to the first workers.
    assert [w.cores for w in plan_local_workers(cpu_workers=3)] == [[0, 1], [2], [3]]
    assert [w.cores for w in plan_local_workers()] == [[0, 1, 2, 3]]


def test_gpu_workers_each_see_one_gpu(four_cores):
    plan = plan_local_workers(gpus=["0", " 1"])
    assert [(w.name, w.cores, w.env) for w in plan] == [
        ("gpu 0", [0, 1], {"GEPPETTO_TORCH_THREADS": "2", "CUDA_VISIBLE_DEVICES": "0"}),
        ("gpu 1", [2, 3], {"GEPPETTO_TORCH_THREADS": "2", "CUDA_VISIBLE_DEVICES": "1"}),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cpu_workers": 5}, "5 workers but this process may use 4 core(s)"),
        ({"cpu_workers": 0}, "at least one local worker is needed"),
        ({"gpus": ["0", "0"]}, "--gpus needs distinct GPU indexes, e.g. 0,1; got ['0', '0']"),
        ({"gpus": ["0", ""]}, "--gpus needs distinct GPU indexes"),
    ],
)
def test_impossible_plans_say_why(four_cores, kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        plan_local_workers(**kwargs)


def test_the_command_refuses_more_workers_than_cores():
    cores = len(local_workers.own_cores())
    with pytest.raises(CommandError, match=f"{cores + 1} workers but this process may use"):
        call_command("runlocalworkers", "--cpu-workers", str(cores + 1))


def test_torch_threads_come_from_the_environment_or_the_pinned_cores(monkeypatch, four_cores):
    monkeypatch.delenv("GEPPETTO_TORCH_THREADS", raising=False)
    assert torch_threads_wanted() is None  # all cores: torch's own default
    monkeypatch.setattr(local_workers, "own_cores", lambda: [2, 3])
    assert torch_threads_wanted() == 2  # pinned to two of four cores
    monkeypatch.setenv("GEPPETTO_TORCH_THREADS", "3")
    assert torch_threads_wanted() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("GEPPETTO_TORCH_THREADS", bad)
        with pytest.raises(ValueError, match=f"not '{bad}'"):
            torch_threads_wanted()


def test_torch_threads_are_set_before_a_local_model_loads():
    # In a fresh process, as a worker starts: in this one, an engine loaded by an earlier
    # test (vLLM's CPU backend) may already hold torch's thread pool.
    code = (
        "import torch; from benchmark.services import local_workers; "
        "print(torch.get_num_threads(), local_workers.configure_torch_threads(), "
        "torch.get_num_threads())"
    )
    env = {**os.environ, "GEPPETTO_TORCH_THREADS": "1", "OMP_NUM_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["2", "1", "1"]


def test_a_local_only_worker_takes_one_message_per_thread(monkeypatch):
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    monkeypatch.delenv("dramatiq_queue_prefetch", raising=False)
    broker = StubBroker(middleware=[])
    middleware = LocalQueuePrefetch()

    monkeypatch.delenv("dramatiq_worker_timeout", raising=False)

    def booted(queues, threads):
        worker = dramatiq.Worker(broker, queues=queues, worker_threads=threads)
        middleware.before_worker_boot(broker, worker)
        return worker.queue_prefetch, worker.worker_timeout

    # One message per thread, and a consumer that looks for the next one within 100 ms
    # of finishing a unit (dramatiq's default: up to 1,000 ms).
    assert booted({"local"}, 1) == (1, 100)
    assert booted({"local"}, 3) == (3, 100)
    assert booted({"local", "api"}, 4) == (8, 1000)  # dramatiq's defaults: API calls wait
    assert booted(None, 2) == (4, 1000)
    monkeypatch.setenv("dramatiq_worker_timeout", "500")
    assert booted({"local"}, 1) == (1, 1000)  # the environment is read by dramatiq itself


@pytest.mark.django_db
def test_a_claim_records_which_process_took_the_unit(tmp_path):
    version = load(tmp_path, GOOD, "good")
    endpoint = ModelEndpoint.objects.create(name="tiny", provider=Provider.HF, model="x")
    run = queue_run(endpoint=endpoint, task_version=version, batch_size=10)
    unit = run.units.get()
    assert unit.worker == ""
    assert leases.claim(unit.pk).worker == f"{socket.gethostname()}:{os.getpid()}"
    unit.refresh_from_db()
    assert unit.worker == f"{socket.gethostname()}:{os.getpid()}"


@pytest.mark.django_db
def test_the_run_page_shows_which_process_took_each_unit(tmp_path, admin_client):
    version = load(tmp_path, GOOD, "good")
    endpoint = ModelEndpoint.objects.create(name="tiny", provider=Provider.HF, model="x")
    run = queue_run(endpoint=endpoint, task_version=version, batch_size=10)
    run.units.update(worker="gpu-node-3:41234")
    page = admin_client.get(f"/admin/benchmark/modelrun/{run.pk}/change/").content.decode()
    assert "gpu-node-3:41234" in page
