"""``manage.py runlocalworkers``: one `local` queue worker per GPU or per group of CPU cores."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from benchmark.services.local_workers import plan_local_workers


class Command(BaseCommand):
    help = (
        "Start the workers of local models (the `local` queue): one process with one thread "
        "per GPU (--gpus 0,1) or per group of CPU cores (--cpu-workers N), each loading the "
        "model once, pinned to its own cores with as many torch threads, taking one unit "
        "at a time. Exits when one of them exits (run it under a supervisor)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--gpus", help="comma-separated GPU indexes (or UUIDs): one worker per GPU"
        )
        parser.add_argument(
            "--cpu-workers",
            type=int,
            default=1,
            help="without --gpus: how many CPU workers share this machine's cores (default 1)",
        )
        parser.add_argument(
            "--worker-shutdown-timeout",
            type=int,
            default=600_000,
            help="ms a worker may take to finish its unit when stopping (default 600000)",
        )

    def handle(self, *args, **o):
        gpus = o["gpus"].split(",") if o["gpus"] is not None else None
        try:
            workers = plan_local_workers(gpus=gpus, cpu_workers=o["cpu_workers"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        children: list[subprocess.Popen] = []
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        command = [
            sys.executable,
            str(settings.BASE_DIR / "manage.py"),
            "rundramatiq",
            "--processes",
            "1",
            "--threads",
            "1",
            "--worker-shutdown-timeout",
            str(o["worker_shutdown_timeout"]),
            "--queues",
            "local",
        ]
        for worker in workers:
            env = {**os.environ, **worker.env, "dramatiq_queue_prefetch": "1"}
            child = subprocess.Popen(  # noqa: S603 (our own manage.py, no shell)
                command,
                env=env,
                # Pinned before it starts, so its worker process inherits the cores.
                preexec_fn=lambda cores=worker.cores: os.sched_setaffinity(0, cores),
            )
            children.append(child)
            self.stdout.write(
                f"local worker {worker.name}: pid {child.pid}, cores "
                f"{','.join(map(str, worker.cores))}, "
                f"{worker.env['GEPPETTO_TORCH_THREADS']} torch thread(s)"
            )
        self.stdout.flush()
        # When one worker exits (killed, out of memory), stop the others and exit with its
        # status, as `rundramatiq` does: the supervisor starts the whole set again.
        code = 0
        while True:
            exited = [c for c in children if c.poll() is not None]
            if exited or stopping:
                break
            time.sleep(0.5)
        if exited and not stopping:
            code = exited[0].returncode or 1
            self.stderr.write(f"local worker pid {exited[0].pid} exited ({code}): stopping all")
            stop(None, None)
        for child in children:
            child.wait()
        if code:
            sys.exit(code)
