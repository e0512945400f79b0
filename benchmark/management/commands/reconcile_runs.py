"""``manage.py reconcile_runs``: re-enqueue work units whose lease ran out."""

from django.core.management.base import BaseCommand

from benchmark.services.runs import reconcile_runs


class Command(BaseCommand):
    help = (
        "Send again the units of active runs that are pending or whose worker lease "
        "expired (a worker died). Safe to run at any time."
    )

    def handle(self, *args, **options):
        self.stdout.write(f"{reconcile_runs()} unit(s) queued again.")
