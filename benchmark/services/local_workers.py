"""Local-model workers: one process per device, one model copy, threads that fit its cores.

A local model is loaded once per process (`execution.runner_for`), so a `local` worker
should be one process with one thread per device: more threads in one process run forward
passes side by side that fight for the same cores (or GPU), and more processes load more
copies of the model. `manage.py runlocalworkers` starts such workers from the plan made
here; a worker started by hand (`rundramatiq --queues local --processes 1 --threads 1`)
gets the same behaviour from `GEPPETTO_TORCH_THREADS` and `config.broker.LocalQueuePrefetch`.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


def worker_id() -> str:
    """``host:pid`` of this process (recorded on the units it takes)."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def own_cores() -> list[int]:
    """The CPU cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def torch_threads_wanted() -> int | None:
    """Intra-op threads for a local model in this process, or None to keep torch's default.

    ``GEPPETTO_TORCH_THREADS`` when set; otherwise the number of cores this process is
    pinned to, when it is pinned to fewer than the machine has (one worker per core group).

    Raises:
        ValueError: ``GEPPETTO_TORCH_THREADS`` is not a whole number of at least 1.
    """
    value = os.environ.get("GEPPETTO_TORCH_THREADS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(
                f"GEPPETTO_TORCH_THREADS must be a whole number of at least 1, not {value!r}"
            )
        return int(value)
    cores = own_cores()
    return len(cores) if len(cores) < (os.cpu_count() or len(cores)) else None


def configure_torch_threads() -> int:
    """Set torch's intra-op threads for this process (before a local model loads).

    Returns:
        The number of threads torch uses now.
    """
    import torch

    wanted = torch_threads_wanted()
    if wanted is not None and torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


@dataclass
class LocalWorker:
    """One local worker process: what it runs on and the environment that says so."""

    name: str
    cores: list[int]
    env: dict = field(default_factory=dict)


def plan_local_workers(*, gpus: list[str] | None = None, cpu_workers: int = 1) -> list[LocalWorker]:
    """Split this machine into local workers: one per GPU, or ``cpu_workers`` core groups.

    Each worker gets its own share of the cores (pinned, so two workers never run on the
    same core) and as many torch threads as cores; a GPU worker sees only its GPU
    (``CUDA_VISIBLE_DEVICES``, so the endpoint's ``device: cuda`` is that GPU).

    Args:
        gpus: GPU indexes or UUIDs, one worker each; None for CPU workers.
        cpu_workers: CPU workers to start when ``gpus`` is None.

    Returns:
        The workers, in order.

    Raises:
        ValueError: more workers than cores, or an empty or repeated GPU.
    """
    cores = own_cores()
    if gpus is not None:
        gpus = [g.strip() for g in gpus]
        if not gpus or any(not g for g in gpus) or len(set(gpus)) != len(gpus):
            raise ValueError(f"--gpus needs distinct GPU indexes, e.g. 0,1; got {gpus!r}")
        count = len(gpus)
    else:
        count = cpu_workers
    if count < 1:
        raise ValueError("at least one local worker is needed")
    if count > len(cores):
        raise ValueError(
            f"{count} workers but this process may use {len(cores)} core(s): each worker "
            "needs a core of its own"
        )
    share, extra = divmod(len(cores), count)
    workers, start = [], 0
    for i in range(count):
        group = cores[start : start + share + (i < extra)]
        start += len(group)
        env = {"GEPPETTO_TORCH_THREADS": str(len(group))}
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i]
        name = f"gpu {gpus[i]}" if gpus is not None else f"cpu {i}"
        workers.append(LocalWorker(name=name, cores=group, env=env))
    return workers
