from django.apps import AppConfig


class ScoringConfig(AppConfig):
    """Alignment reports built from runs and human data (the measures are in `stats`)."""

    name = "scoring"
    verbose_name = "Scoring"
