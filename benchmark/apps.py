from django.apps import AppConfig


class BenchmarkConfig(AppConfig):
    """Tasks, human datasets, models and runs."""

    name = "benchmark"
    verbose_name = "Benchmark"
