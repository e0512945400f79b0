"""``manage.py serve``: the embedded mode in one process (web server + in-process worker)."""

import threading

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from config.broker import start_embedded_worker, start_reconcile_loop


class Command(BaseCommand):
    help = (
        "Serve Geppetto. Without BROKER_URL an in-process worker runs the job queue in the "
        "same process; with BROKER_URL, start workers with `manage.py rundramatiq`."
    )

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--threads", type=int, default=2, help="embedded worker threads")

    def handle(self, *args, addrport, threads, **options):
        if settings.BROKER_URL:
            self.stdout.write(f"Broker {settings.DRAMATIQ_BROKER['BROKER']}: no in-process worker.")
        else:
            from benchmark.services.runs import reconcile_runs

            start_embedded_worker(threads)
            # In-memory messages died with the last process: every open unit is sent again.
            reconcile_runs()
            start_reconcile_loop(threading.Event())
            self.stdout.write(f"Embedded mode: in-process worker with {threads} thread(s).")
        # The autoreloader would fork a second process with a second worker: off.
        call_command("runserver", addrport, use_reloader=False)
