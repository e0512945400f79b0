"""Reports: a frozen selection of runs and human data, the digests of what they held, files.

A report records what it was built from (runs, human datasets, task versions, the
sections asked for and the parameters) together with the ``content_sha256`` of every
dataset, a digest of every run's responses and the code version. Whether it is stale
is computed by comparing those digests with the current ones (`scoring.services`).
"""

from django.db import models


class ReportState(models.TextChoices):
    """Lifecycle of a report."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Report(models.Model):
    """An alignment report: frozen inputs, progress, and the ZIP bundle once built."""

    title = models.CharField(max_length=200, blank=True)
    runs = models.ManyToManyField("benchmark.ModelRun", related_name="reports")
    datasets = models.ManyToManyField("benchmark.HumanDataset", related_name="reports", blank=True)
    task_versions = models.ManyToManyField("benchmark.TaskVersion", related_name="reports")
    sections = models.JSONField(default=list, help_text="the comparisons this report holds")
    params = models.JSONField(
        default=dict, help_text="metric, resamples, seed, confidence, pi_orient, …"
    )
    inputs = models.JSONField(
        default=dict,
        help_text="digests at selection time: datasets' content_sha256, runs' responses, "
        "task versions' spec_hash",
    )
    code_version = models.CharField(max_length=100)
    state = models.CharField(max_length=20, choices=ReportState.choices, default=ReportState.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0–1")
    step = models.CharField(max_length=200, blank=True, help_text="what is being computed")
    error = models.TextField(blank=True)
    file = models.CharField(
        max_length=500, blank=True, help_text="path of the ZIP under MEDIA_ROOT"
    )
    sha256 = models.CharField(max_length=64, blank=True, help_text="sha256 of the ZIP")
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"report {self.pk}: {self.title or ', '.join(self.sections)} ({self.state})"
