"""The queue path of a local model against `run_model --here`, measured in the same run.

An exact IPIP-50 run of the bundled SmolLM2-135M-Instruct (float32, CPU), each time with an
empty response cache and a freshly started process that loads the model:

- ``here``: ``manage.py run_model … --here`` (the units executed in that process);
- ``1``: ``manage.py runlocalworkers --cpu-workers 1`` (one process, all cores, as many
  torch threads), the run queued through Redis once the worker is up;
- ``1c``: the same, started with one core only (one torch thread): one
  "device" of a CPU machine;
- ``2``: ``runlocalworkers --cpu-workers 2`` (two processes, each pinned to its share of
  the cores with as many torch threads): N "devices" on a CPU machine;
- ``plain``: ``rundramatiq --queues local`` with dramatiq's defaults (one process per core,
  8 threads each, so 8 messages prefetched per process), as workers were started before.

Times run from queueing to the last response (model loading included, as a user waits for
it); "steady" counts from the first response to the last. Peak RSS is each worker process's
high-water mark (``VmHWM``), or the ``--here`` process's. Prints a table; asserts nothing.

Needs PostgreSQL (``DATABASE_URL``; the database is migrated and gets a task, an endpoint and
runs) and Redis (``--redis-url``, flushed). The model folder comes from ``--model-dir`` or
``manage.py setup_local_model``.

Run: DATABASE_URL=postgres://… .venv/bin/python benchmarks/bench_queue.py [--repeats 2]
[--configs here,1,1c,2,plain]
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

IPIP = ROOT / "benchmark" / "tasks" / "personality" / "ipip-big5-50.yaml"
ENDPOINT = "bench-queue-smollm2"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--model-dir", type=Path, help="converted SmolLM2 folder")
    parser.add_argument("--batch-size", type=int, default=5, help="items per unit")
    parser.add_argument("--repeats", type=int, default=1, help="rounds over the configurations")
    parser.add_argument(
        "--configs",
        default="here,1,1c,2",
        help="comma-separated, compared with the first: here, 1, 1c, 2, plain",
    )
    return parser.parse_args()


def setup(args):
    """Django with this Redis as broker; the task and the endpoint in the database."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench_queue.py needs DATABASE_URL=postgres://… (shared with the workers)")
    os.environ["BROKER_URL"] = args.redis_url
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    from benchmark.local_models import prepare_smollm2
    from benchmark.models import ModelEndpoint, Provider
    from benchmark.services.tasks import load_tasks

    redis.Redis.from_url(args.redis_url).flushdb()
    call_command("migrate", verbosity=0)
    version = load_tasks([IPIP])[0].version
    if args.model_dir:
        folder, revision = args.model_dir, "bench"
    else:
        folder, revision = prepare_smollm2()
    endpoint, _ = ModelEndpoint.objects.update_or_create(
        name=ENDPOINT,
        defaults={
            "provider": Provider.HF,
            "model": str(folder),
            "revision": revision,
            "settings": {"device": "cpu", "dtype": "float32", "batch_size": 8},
        },
    )
    return endpoint, version


def fresh(endpoint) -> None:
    """No cached answer and no active run of the endpoint: every configuration computes."""
    from benchmark.models import CachedCall, ModelRun, RunState
    from benchmark.services.runs import cancel_run

    CachedCall.objects.filter(endpoint=endpoint).delete()
    for run in ModelRun.objects.filter(endpoint=endpoint).exclude(
        state__in=[RunState.COMPLETED, RunState.CANCELLED, RunState.FAILED]
    ):
        cancel_run(run=run)


def steady_rate(run) -> float:
    """Responses per second from the first response to the last (model loading excluded)."""
    created = list(run.responses.order_by("created").values_list("created", flat=True))
    span = (created[-1] - created[0]).total_seconds()
    return (len(created) - 1) / span if span > 0 else float("nan")


def vm_hwm_gb(pid: int) -> float | None:
    """Peak resident memory of a live process (GB), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024**2


def run_here(endpoint, batch_size: int) -> dict:
    """``run_model --here`` in a fresh process (the in-memory broker, as on a laptop)."""
    from benchmark.models import ModelRun

    env = {k: v for k, v in os.environ.items() if k != "BROKER_URL"}
    command = [sys.executable, "manage.py", "run_model", ENDPOINT, "ipip-big5-50", "--here"]
    proc = subprocess.Popen(
        [*command, "--batch-size", str(batch_size)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    match = re.search(r"Run (\d+) completed in ([\d.]+) s", out)
    if status or not match:
        sys.exit(f"run_model --here failed:\n{out[-3000:]}")
    run = ModelRun.objects.get(pk=int(match.group(1)))
    seconds = float(match.group(2))
    return {
        "seconds": seconds,
        "responses": run.responses.count(),
        "steady": steady_rate(run),
        "rss": [usage.ru_maxrss / 1024**2],
        "units": {},
    }


def start_workers(kind: str, log: Path) -> subprocess.Popen:
    """``plain``: dramatiq's defaults; ``1``/``2``: CPU workers; ``1c``: one worker on one core."""
    cores = sorted(os.sched_getaffinity(0))
    if kind == "plain":
        command = ["rundramatiq", "--queues", "local"]
    else:
        command = ["runlocalworkers", "--cpu-workers", kind.removesuffix("c")]
        # One "device": the worker sees a single core (and so uses one torch thread).
        cores = cores[:1] if kind == "1c" else cores
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: os.sched_setaffinity(0, cores),
        )


def run_queue(endpoint, version, kind: str, batch_size: int, log: Path) -> dict:
    """Start the workers, wait until they are up, queue the run, wait until it completes."""
    import signal

    from benchmark.models import ModelRun, RunState
    from benchmark.services.runs import queue_run

    processes = {"plain": os.cpu_count(), "1": 1, "1c": 1, "2": 2}[kind]
    workers = start_workers(kind, log)
    try:
        deadline = time.monotonic() + 300
        while log.read_text().count("ready for action") < processes:
            if time.monotonic() > deadline or workers.poll() is not None:
                sys.exit(f"workers did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        started = time.perf_counter()
        run = queue_run(
            endpoint=endpoint, task_version=version, scoring_mode="exact", batch_size=batch_size
        )
        while ModelRun.objects.get(pk=run.pk).state != RunState.COMPLETED:
            if time.perf_counter() - started > 1800:
                sys.exit(f"run {run.pk} did not complete:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        holders = list(run.units.values_list("worker", flat=True))
        pids = sorted({int(h.rsplit(":", 1)[1]) for h in holders})
        rss = [vm_hwm_gb(pid) for pid in pids]
    finally:
        os.killpg(workers.pid, signal.SIGKILL)
        workers.wait()
    return {
        "seconds": seconds,
        "responses": run.responses.count(),
        "steady": steady_rate(run),
        "rss": [r for r in rss if r is not None],
        "units": {pid: sum(h.endswith(f":{pid}") for h in holders) for pid in pids},
    }


def main():
    args = parse_args()
    endpoint, version = setup(args)
    configs = args.configs.split(",")
    if not configs or set(configs) - {"here", "1", "1c", "2", "plain"}:
        sys.exit(f"--configs: choose among here, 1, 1c, 2, plain; got {args.configs!r}")
    names = {
        "here": "run_model --here (1 process)",
        "1": "runlocalworkers --cpu-workers 1",
        "1c": "runlocalworkers --cpu-workers 1 on one core",
        "2": "runlocalworkers --cpu-workers 2",
        "plain": f"rundramatiq --queues local ({os.cpu_count()} proc × 8 threads)",
    }
    results: dict[str, list[dict]] = {c: [] for c in configs}
    load_before = os.getloadavg()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-queue-{os.getpid()}.log"
    for round_ in range(args.repeats):
        for config in configs:
            fresh(endpoint)
            result = (
                run_here(endpoint, args.batch_size)
                if config == "here"
                else run_queue(endpoint, version, config, args.batch_size, log)
            )
            results[config].append(result)
            print(
                f"round {round_ + 1} {names[config]}: {result['responses']} responses in "
                f"{result['seconds']:.1f} s, steady {result['steady']:.2f}/s, "
                f"units per process {list(result['units'].values()) or '-'}, "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    load_after = os.getloadavg()
    log.unlink(missing_ok=True)

    def best(config, key):
        values = [r[key] for r in results[config]]
        return min(values) if key == "seconds" else max(values)

    base_rate = 50 / best(configs[0], "seconds")
    base_steady = best(configs[0], "steady")
    print()
    print(
        f"Exact IPIP-50 (50 items × 5 options), SmolLM2-135M-Instruct float32, batch "
        f"{args.batch_size} items per unit, {os.cpu_count()} cores; best of {args.repeats}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(
        f"| configuration | responses/s (queued → done) | vs {configs[0]} | steady responses/s "
        f"| vs {configs[0]} | peak RSS per worker process | units per process |"
    )
    print("|---|---|---|---|---|---|---|")
    for config in configs:
        rate = 50 / best(config, "seconds")
        steady = best(config, "steady")
        rss = max((r["rss"] for r in results[config]), key=len)
        units = max((list(r["units"].values()) for r in results[config]), key=len)
        print(
            f"| {names[config]} | {rate:.2f} | {rate / base_rate:.2f}× | {steady:.2f} "
            f"| {steady / base_steady:.2f}× | {', '.join(f'{g:.2f} GB' for g in rss)} "
            f"| {', '.join(map(str, units)) or '-'} |"
        )


if __name__ == "__main__":
    main()
