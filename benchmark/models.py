"""Tasks, their immutable versions and items, and human datasets.

A `Task` is a name; what a participant or a model actually did is always tied to a
`TaskVersion`, whose `spec_hash` is the sha256 of its canonical spec. Editing a YAML
file makes a new version; rows that point at an old version keep pointing there.
"""

from django.core.exceptions import ValidationError
from django.db import models


class TaskKind(models.TextChoices):
    """The four kinds of task spec."""

    QUESTIONNAIRE = "questionnaire", "Questionnaire"
    CHOICE = "choice", "Choice"
    SEQUENTIAL = "sequential", "Sequential"
    TRANSCRIPT = "transcript", "Transcript"


class ImmutableModel(models.Model):
    """A row that is written once: saving it again is refused."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        """Insert the row; refuse updates of an existing one."""
        if self.pk is not None and not self._state.adding:
            raise ValidationError(f"{type(self).__name__} rows are immutable")
        super().save(*args, **kwargs)


class Task(models.Model):
    """A task family member, e.g. ``ipip-big5-50``; its content lives in versions."""

    slug = models.SlugField(max_length=100, unique=True)
    family = models.SlugField(max_length=100)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=TaskKind.choices)
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["family", "slug"]

    def __str__(self):
        return self.slug

    @property
    def latest_version(self):
        """The newest `TaskVersion` of this task, or None."""
        return self.versions.order_by("-number").first()


class TaskVersion(ImmutableModel):
    """One immutable content of a task, identified by the hash of its canonical spec."""

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    spec_hash = models.CharField(max_length=64, unique=True)
    spec = models.JSONField()
    source_path = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task__slug", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["task", "number"], name="taskversion_unique_number"),
        ]

    def __str__(self):
        return f"{self.task.slug} v{self.number} ({self.spec_hash[:10]})"

    @property
    def kind(self) -> str:
        """The task kind, as written in the spec."""
        return self.spec["kind"]


class Supersession(models.Model):
    """A note that a task version should no longer be used, and why.

    The version itself stays immutable, and studies and runs that used it keep pointing
    at it; the admin, the API and reports show the note next to it.
    """

    version = models.OneToOneField(
        TaskVersion, on_delete=models.CASCADE, related_name="supersession"
    )
    superseded_by = models.ForeignKey(
        TaskVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.version} superseded: {self.reason[:60]}"


class Item(ImmutableModel):
    """One question, choice problem or trial template of a task version."""

    version = models.ForeignKey(TaskVersion, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(max_length=100)
    position = models.PositiveIntegerField()
    text = models.TextField(blank=True)
    options = models.JSONField(default=list, help_text="[{key, label, value}] the answers offered")
    scale = models.CharField(max_length=50, blank=True, help_text="sub-scale (questionnaires)")
    reverse = models.BooleanField(default=False, help_text="reverse keyed (questionnaires)")
    data = models.JSONField(default=dict, blank=True, help_text="kind-specific fields")

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="item_unique_key"),
        ]

    def __str__(self):
        return f"{self.key}: {self.text[:60]}"


class DatasetSource(models.TextChoices):
    """Where a human dataset came from."""

    BUNDLED = "bundled", "Bundled with Geppetto"
    IMPORTED = "imported", "Imported file"
    COLLECTED = "collected", "Collected by a study"


class DatasetKind(models.TextChoices):
    """What a human dataset holds."""

    RESPONSES = "responses", "Responses of people"
    NORMS = "norms", "Published norms"


class HumanDataset(models.Model):
    """Human behaviour for a task: per-participant transcripts and/or per-item counts."""

    slug = models.SlugField(max_length=150, unique=True)
    name = models.CharField(max_length=200)
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.PROTECT, related_name="datasets"
    )
    source = models.CharField(max_length=20, choices=DatasetSource.choices)
    content_sha256 = models.CharField(
        max_length=64, unique=True, help_text="hash of the imported bytes; re-importing is a no-op"
    )
    file_name = models.CharField(max_length=300, blank=True)
    provenance = models.TextField(blank=True)
    licence = models.CharField(max_length=300, blank=True)
    n_participants = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=0,
        help_text="distinct people; empty when the source does not say",
    )
    kind = models.CharField(
        max_length=20,
        choices=DatasetKind.choices,
        default=DatasetKind.RESPONSES,
        help_text="norms: per-scale mean, SD and n of people (ScaleNorm rows), no answers",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug


PROFILE_FIELDS = ("age", "gender", "nationality", "education", "diagnosis")


class Transcript(models.Model):
    """One participant's session, Psych-201 style.

    ``text`` holds the whole session with every response inside ``<<…>>``;
    ``spans`` holds ``[start, end]`` character offsets of each response's
    inside. Item-level datasets (questionnaires) keep ``answers`` (item key →
    answer) and leave ``text`` empty: it is rendered from the task spec on export.
    """

    dataset = models.ForeignKey(HumanDataset, on_delete=models.CASCADE, related_name="transcripts")
    line = models.PositiveIntegerField(help_text="1-based position in the source file")
    participant = models.CharField(max_length=200)
    experiment = models.CharField(max_length=500, blank=True)
    text = models.TextField(blank=True)
    spans = models.JSONField(default=list)
    rts = models.JSONField(null=True, blank=True, help_text="one RT (ms) per response span")
    answers = models.JSONField(default=dict, blank=True)
    profile = models.JSONField(
        default=dict,
        blank=True,
        help_text="age, gender, nationality, education, diagnosis: values kept as imported",
    )
    extra = models.JSONField(
        default=dict, blank=True, help_text="any other Psych-201 keys, values kept as imported"
    )

    class Meta:
        ordering = ["dataset", "line"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "line"], name="transcript_unique_line"),
        ]
        indexes = [models.Index(fields=["dataset", "participant"])]

    def __str__(self):
        return f"{self.dataset.slug}/{self.participant}"

    @property
    def responses(self) -> list[str]:
        """The texts inside the ``<<…>>`` spans, in order."""
        return [self.text[start:end] for start, end in self.spans]


class ItemDistribution(models.Model):
    """Aggregate human answers to one item when only counts are published (e.g. choices13k)."""

    dataset = models.ForeignKey(
        HumanDataset, on_delete=models.CASCADE, related_name="item_distributions"
    )
    item_key = models.CharField(max_length=100)
    n = models.PositiveIntegerField(help_text="participants who answered")
    proportions = models.JSONField(help_text="{option key: proportion}; sums to 1")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["dataset", "item_key"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "item_key"], name="itemdist_unique_item"),
        ]

    def __str__(self):
        return f"{self.dataset.slug}/{self.item_key} (n={self.n})"

    @property
    def counts(self) -> dict[str, float]:
        """Expected counts per option (proportion × n); not always whole numbers."""
        return {key: p * self.n for key, p in self.proportions.items()}


# --- Published norms (the Π battery) --------------------------------------------------


class NormStatistic(models.TextChoices):
    """Which scale score the published mean and SD describe."""

    MEAN = "mean", "Mean of the keyed items"
    SUM = "sum", "Sum of the keyed items"


class ScaleNorm(models.Model):
    """People's mean, SD and n on one scale, for one group, as a source published them.

    Rows rather than JSON so that the database keeps them valid (a positive SD, n of
    two or more, one row per scale and group) and they can be filtered by scale.
    """

    dataset = models.ForeignKey(HumanDataset, on_delete=models.CASCADE, related_name="norms")
    scale = models.CharField(max_length=100, help_text="scale key in the task spec")
    group = models.CharField(max_length=200, help_text="e.g. 'all', 'Female', 'Students (Men)'")
    statistic = models.CharField(max_length=10, choices=NormStatistic.choices)
    mean = models.FloatField()
    sd = models.FloatField()
    n = models.PositiveIntegerField(
        null=True, blank=True, help_text="empty when the source does not give the sample size"
    )
    source = models.CharField(max_length=500, help_text="citation, with page or table")

    class Meta:
        ordering = ["dataset", "scale", "group"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "scale", "group"], name="scalenorm_unique_group"
            ),
            models.CheckConstraint(condition=models.Q(sd__gt=0), name="scalenorm_sd_positive"),
            models.CheckConstraint(
                condition=models.Q(n__isnull=True) | models.Q(n__gte=2), name="scalenorm_n_two"
            ),
        ]

    def __str__(self):
        return f"{self.dataset.slug}/{self.scale}/{self.group}: {self.mean} ± {self.sd}"


# --- Language models and runs --------------------------------------------------------


class Provider(models.TextChoices):
    """Which runner talks to an endpoint (see `benchmark.runners`)."""

    HF = "hf", "Hugging Face transformers (local)"
    VLLM = "vllm", "vLLM (local GPU)"
    OPENAI = "openai", "OpenAI-compatible HTTP API"
    ANTHROPIC = "anthropic", "Anthropic Messages API"


LOCAL_PROVIDERS = {Provider.HF, Provider.VLLM}


class ModelEndpoint(models.Model):
    """A language model reachable through one runner, with what it costs and can do.

    Credentials are never stored: ``api_key_env`` names the environment variable
    that holds the key on the worker machines.
    """

    name = models.SlugField(max_length=100, unique=True)
    provider = models.CharField(max_length=20, choices=Provider.choices)
    model = models.CharField(max_length=300, help_text="model name, or a local folder for hf/vllm")
    revision = models.CharField(
        max_length=100, blank=True, help_text="model revision; part of every cache key"
    )
    settings = models.JSONField(
        default=dict,
        blank=True,
        help_text="runner options, e.g. {base_url, max_concurrency, requests_per_minute, "
        "tokens_per_minute} for HTTP, {device, dtype, batch_size} for hf, "
        "{tensor_parallel_size, gpu_memory_utilization} for vllm",
    )
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="name of the environment variable with the API key"
    )
    base_model = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="post_trained_models",
        help_text="the base model this one was post-trained from",
    )
    post_trained = models.BooleanField(default=False)
    release_date = models.DateField(null=True, blank=True)
    price_input_per_mtok = models.DecimalField(
        max_digits=10, decimal_places=4, default=0, help_text="USD per million input tokens"
    )
    price_output_per_mtok = models.DecimalField(
        max_digits=10, decimal_places=4, default=0, help_text="USD per million output tokens"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            (
                "configure_endpoint",
                "Can add and change endpoints (the hosts and key variables workers use)",
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.provider})"

    def clean(self):
        """Refuse a key variable or a ``base_url`` host that is off the allow-lists."""
        from benchmark.runners.http import ProviderError, check_base_url, check_key_env

        errors = {}
        if self.api_key_env:
            try:
                check_key_env(self.api_key_env)
            except ProviderError as exc:
                errors["api_key_env"] = exc.message
        settings = self.settings if isinstance(self.settings, dict) else {}
        if not isinstance(self.settings, dict):
            errors["settings"] = "A JSON object of runner options."
        elif "base_url" in settings:
            try:
                check_base_url(settings["base_url"])
            except ProviderError as exc:
                errors["settings"] = f"base_url: {exc.message}"
        if errors:
            raise ValidationError(errors)

    @property
    def queue_name(self) -> str:
        """Local models run on the `local` queue (one process per device), APIs on `api`."""
        return "local" if self.provider in LOCAL_PROVIDERS else "api"


class RunMode(models.TextChoices):
    """What the model is asked to do."""

    PARTICIPANT = "participant", "Participant (first person)"
    PREDICT_POPULATION = "predict_population", "Predict the human population"
    PREDICT_INDIVIDUAL = "predict_individual", "Predict an individual from their profile"
    LIKELIHOOD = "likelihood", "Likelihood of human transcripts"


class ScoringMode(models.TextChoices):
    """How an answer distribution was obtained."""

    EXACT = "exact", "Exact log-probabilities"
    SAMPLED = "sampled", "Parsed samples"


class RunState(models.TextChoices):
    """Lifecycle of a run; `paused` is set by the budget cap or by hand."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ModelRun(models.Model):
    """One endpoint doing one task version in one mode; split into work units."""

    endpoint = models.ForeignKey(ModelEndpoint, on_delete=models.PROTECT, related_name="runs")
    task_version = models.ForeignKey(TaskVersion, on_delete=models.PROTECT, related_name="runs")
    dataset = models.ForeignKey(
        HumanDataset,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs",
        help_text="human transcripts (likelihood) or profiles (predict_individual)",
    )
    mode = models.CharField(max_length=30, choices=RunMode.choices)
    scoring_mode = models.CharField(max_length=10, choices=ScoringMode.choices)
    prompt_variant = models.CharField(
        max_length=30,
        default="neutral",
        help_text="neutral, or human: 'respond as a typical human'",
    )
    prompt_hash = models.CharField(max_length=64, help_text="sha256 of the prompt template used")
    with_profile = models.BooleanField(default=False, help_text="prepend participant profiles")
    params = models.JSONField(default=dict, blank=True, help_text="decoding parameters")
    seed = models.BigIntegerField(default=0)
    samples_per_item = models.PositiveIntegerField(default=1)
    max_trials = models.PositiveIntegerField(
        null=True, blank=True, help_text="sequential tasks: play only the first N trials"
    )
    budget_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    estimated_cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    state = models.CharField(max_length=20, choices=RunState.choices, default=RunState.QUEUED)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True, help_text="first start; kept on resume")
    resumed = models.DateTimeField(
        null=True, blank=True, help_text="last resume or retry: rate and time left count from here"
    )
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"run {self.pk}: {self.endpoint.name} on {self.task_version} ({self.mode})"


class UnitState(models.TextChoices):
    """Lifecycle of a work unit."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class WorkUnit(models.Model):
    """A batch of a run's work. The database, not the broker, says what is left to do."""

    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="units")
    index = models.PositiveIntegerField()
    payload = models.JSONField(help_text="item keys, or transcript ids, or sample indexes")
    expected = models.PositiveIntegerField(help_text="responses this unit must produce")
    state = models.CharField(max_length=20, choices=UnitState.choices, default=UnitState.PENDING)
    attempts = models.PositiveIntegerField(
        default=0, help_text="errors raised by the work (a worker that died is not one)"
    )
    lost_leases = models.PositiveIntegerField(
        default=0, help_text="times its worker stopped (killed) before finishing it"
    )
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(
        max_length=32, blank=True, help_text="the current holder; every write checks it"
    )
    last_error = models.TextField(blank=True)
    worker = models.CharField(
        max_length=100,
        blank=True,
        help_text="host and process id of the worker that last took it (`host:pid`)",
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="workunit_unique_index"),
        ]
        indexes = [models.Index(fields=["state", "lease_until"])]

    def __str__(self):
        return f"run {self.run_id} unit {self.index} ({self.state})"


class Beat(models.Model):
    """When a periodic job is next due; the process that moves it forward runs the job."""

    name = models.CharField(max_length=50, unique=True)
    due = models.DateTimeField()

    def __str__(self):
        return f"{self.name} due {self.due:%Y-%m-%d %H:%M:%S}"


class ModelResponse(models.Model):
    """One model answer: unique per run, item and sample index (written by upsert)."""

    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="responses")
    unit = models.ForeignKey(WorkUnit, on_delete=models.CASCADE, related_name="responses")
    item_key = models.CharField(max_length=200, help_text="item, trial, or transcript id")
    sample_index = models.PositiveIntegerField(default=0)
    scoring_mode = models.CharField(max_length=10, choices=ScoringMode.choices)
    prompt = models.TextField(blank=True)
    raw_output = models.TextField(blank=True)
    answer = models.CharField(max_length=200, blank=True, help_text="parsed option; blank if none")
    distribution = models.JSONField(
        null=True, blank=True, help_text="{option: probability}, renormalised over the options"
    )
    mass_outside = models.FloatField(null=True, blank=True)
    logprob = models.FloatField(null=True, blank=True, help_text="summed log-probability")
    details = models.JSONField(default=dict, blank=True, help_text="per-option or per-span detail")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=0)
    latency_ms = models.FloatField(default=0)
    cached = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "item_key", "sample_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "item_key", "sample_index"], name="modelresponse_unique"
            ),
        ]

    def __str__(self):
        return f"run {self.run_id} {self.item_key}#{self.sample_index}: {self.answer}"


class CachedCall(models.Model):
    """A provider answer, reused whenever the same call would be made again.

    Keyed by endpoint + model revision, the prompt's hash, the decoding parameters
    and the sample index, so N samples are N calls and re-running calls nothing.
    """

    key = models.CharField(max_length=64, unique=True)
    endpoint = models.ForeignKey(ModelEndpoint, on_delete=models.CASCADE, related_name="+")
    value = models.JSONField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.key
