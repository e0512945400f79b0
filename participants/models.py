"""Studies, participant sessions, their responses and integrity flags.

A `Study` puts one task version in front of people recruited on one platform. Each
participant gets one `Session` (unique per study and recruitment id, enforced by the
database), reached through an opaque token. Every answer is one `Response` row, unique
per session and item, written with the client's idempotency key so a retried POST
stores nothing twice. `Flag`s record integrity signals for the researcher; they never
reject anyone by themselves.
"""

import secrets

from django.core.exceptions import ValidationError
from django.db import models

from benchmark.models import TaskVersion


def new_token() -> str:
    """An unguessable session token (256 bits)."""
    return secrets.token_urlsafe(32)


def new_salt() -> str:
    """A per-study salt for hashing IP addresses and user agents."""
    return secrets.token_hex(16)


class RecruitmentSource(models.TextChoices):
    """Where participants come from; decides the URL parameters and the completion redirect."""

    PROLIFIC = "prolific", "Prolific"
    SONA = "sona", "SONA Systems"
    MTURK = "mturk", "Amazon Mechanical Turk"
    OPEN = "open", "Open link (anonymous)"


# A shorter limit times sessions out before anyone could finish; a longer one keeps
# abandoned sessions holding places for weeks.
MIN_TIME_LIMIT_MINUTES = 5
MAX_TIME_LIMIT_MINUTES = 30 * 24 * 60

# Demographic answers a quota cell can be keyed on ("gender=female").
CELL_FIELDS = ("gender", "nationality", "education")


class StudyStatus(models.TextChoices):
    """Whether new participants may start."""

    OPEN = "open", "Open"
    PAUSED = "paused", "Paused"
    CLOSED = "closed", "Closed"


class Study(models.Model):
    """One task version offered to participants from one recruitment source."""

    task_version = models.ForeignKey(TaskVersion, on_delete=models.PROTECT, related_name="studies")
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    consent_markdown = models.TextField(
        help_text="shown before anything else; paragraphs, **bold**, *italic* and - lists"
    )
    estimated_minutes = models.PositiveIntegerField(default=10)
    target_n = models.PositiveIntegerField(
        default=100, help_text="sessions that may be running or completed at the same time"
    )
    conditions = models.JSONField(
        default=list,
        blank=True,
        help_text='counterbalancing groups, e.g. ["A", "B"]; each new session joins the '
        "least filled one that still has room",
    )
    quotas = models.JSONField(
        default=dict,
        blank=True,
        help_text='maximum sessions per condition, e.g. {"A": 50, "B": 50}, and per demographic '
        'cell, e.g. {"gender=female": 50} (checked when the demographics are answered)',
    )
    time_limit_minutes = models.PositiveIntegerField(
        default=60, help_text="a session still running after this long is timed out"
    )
    source = models.CharField(
        max_length=20, choices=RecruitmentSource.choices, default=RecruitmentSource.OPEN
    )
    sona_credit_url = models.CharField(
        max_length=500,
        blank=True,
        help_text="SONA credit granting URL with {id} where the participant's id goes, e.g. "
        "https://uni.sona-systems.com/webstudy_credit.aspx?experiment_id=1&"
        "credit_token=abc&survey_code={id}",
    )
    completion_code = models.CharField(max_length=100, blank=True)
    screenout_code = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=StudyStatus.choices, default=StudyStatus.OPEN)
    ask_demographics = models.BooleanField(default=False)
    seed = models.BigIntegerField(default=0, help_text="seeds every session's trial order")
    hash_salt = models.CharField(max_length=64, default=new_salt, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "studies"

    def __str__(self):
        return self.title

    def clean(self):
        """Refuse settings the player cannot honour, naming the field."""
        errors = {}
        if self.task_version_id and self.task_version.kind == "transcript":
            errors["task_version"] = "Transcript tasks have no trials to show participants."
        conditions = self.conditions
        if not isinstance(conditions, list) or not all(
            isinstance(c, str) and c for c in conditions
        ):
            errors["conditions"] = 'A list of condition names, e.g. ["A", "B"].'
        elif len(set(conditions)) != len(conditions):
            errors["conditions"] = "Condition names must be unique."
        quotas = self.quotas
        if not isinstance(quotas, dict) or not all(
            isinstance(n, int) and n >= 0 for n in quotas.values()
        ):
            errors["quotas"] = 'A mapping of condition to a whole number, e.g. {"A": 50}.'
        elif isinstance(conditions, list) and (
            unknown := sorted(k for k in quotas if "=" not in k and k not in conditions)
        ):
            errors["quotas"] = f"Quotas for unknown conditions: {unknown}."
        elif bad := sorted(k for k in quotas if "=" in k and k.split("=")[0] not in CELL_FIELDS):
            errors["quotas"] = f"Demographic cells must use one of {list(CELL_FIELDS)}: {bad}."
        elif any("=" in k for k in quotas) and not self.ask_demographics:
            errors["quotas"] = "Demographic cell quotas need 'ask demographics' switched on."
        if self.sona_credit_url and not self.sona_credit_url.lower().startswith(
            ("https://", "http://")
        ):
            errors["sona_credit_url"] = "The credit URL must start with https:// (or http://)."
        elif self.sona_credit_url and "{id}" not in self.sona_credit_url:
            errors["sona_credit_url"] = "Put {id} where SONA expects the participant's id."
        if self.time_limit_minutes is not None and not (
            MIN_TIME_LIMIT_MINUTES <= self.time_limit_minutes <= MAX_TIME_LIMIT_MINUTES
        ):
            errors["time_limit_minutes"] = (
                f"From {MIN_TIME_LIMIT_MINUTES} to {MAX_TIME_LIMIT_MINUTES:,} minutes (30 days)."
            )
        if self.source == RecruitmentSource.PROLIFIC and not self.completion_code:
            errors["completion_code"] = "Prolific needs the study's completion code."
        if errors:
            raise ValidationError(errors)


class SessionState(models.TextChoices):
    """Lifecycle of one participation."""

    STARTED = "started", "Started"
    COMPLETED = "completed", "Completed"
    RETURNED = "returned", "Returned"
    TIMED_OUT = "timed_out", "Timed out"
    SCREENED_OUT = "screened_out", "Screened out"


# Sessions that hold a place in the study's target N and quotas.
ACTIVE_STATES = (SessionState.STARTED, SessionState.COMPLETED)


class Session(models.Model):
    """One participant doing one study, reached only through its opaque token."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="sessions")
    recruitment_id = models.CharField(max_length=200)
    recruitment = models.JSONField(default=dict, blank=True, help_text="platform URL parameters")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    state = models.CharField(
        max_length=20, choices=SessionState.choices, default=SessionState.STARTED
    )
    condition = models.CharField(max_length=100, blank=True)
    order_seed = models.BigIntegerField(default=0)
    trial_order = models.JSONField(default=list, help_text="item keys in the order shown")
    consented = models.DateTimeField(null=True, blank=True)
    demographics = models.JSONField(default=dict, blank=True)
    demographics_done = models.BooleanField(default=False)
    instructions_done = models.DateTimeField(null=True, blank=True)
    ip_hash = models.CharField(max_length=64, blank=True)
    ua_hash = models.CharField(max_length=64, blank=True)
    started = models.DateTimeField(auto_now_add=True)
    deadline = models.DateTimeField()
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "recruitment_id"], name="session_one_per_recruitment_id"
            ),
        ]
        indexes = [models.Index(fields=["study", "state"])]

    def __str__(self):
        return f"{self.study.slug}/{self.pk} ({self.state})"

    @property
    def participant_code(self) -> str:
        """The pseudonymous id used in exports (never the platform's id)."""
        return f"{self.study.slug}-{self.pk}"

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish, for finished sessions."""
        if self.finished is None:
            return None
        return (self.finished - self.started).total_seconds()


class Response(models.Model):
    """One answer, saved as it is given; unique per session and item."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="responses")
    item_key = models.CharField(max_length=100)
    position = models.PositiveIntegerField(help_text="0-based place in the session's trial order")
    answer = models.CharField(max_length=200)
    feedback = models.JSONField(default=dict, blank=True, help_text="computed by the server")
    idempotency_key = models.CharField(max_length=64)
    rt_ms = models.FloatField(null=True, blank=True, help_text="client performance.now() delta")
    client_ts = models.DateTimeField(null=True, blank=True)
    server_ts = models.DateTimeField(auto_now_add=True)
    telemetry = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["session", "position"]
        constraints = [
            models.UniqueConstraint(fields=["session", "item_key"], name="response_one_per_item"),
            models.UniqueConstraint(
                fields=["session", "idempotency_key"], name="response_unique_idempotency_key"
            ),
        ]

    def __str__(self):
        return f"{self.session_id}/{self.item_key}={self.answer}"


class FlagKind(models.TextChoices):
    """Integrity signals; each is a hint for the researcher, never a rejection."""

    ATTENTION_CHECK = "attention_check", "Failed attention check"
    WEBDRIVER = "webdriver", "navigator.webdriver was true"
    PASTE = "paste", "Pasted text"
    BLUR = "blur", "Left the page often"
    TOO_FAST = "too_fast", "Implausibly fast responses"
    UNIFORM_RT = "uniform_rt", "Implausibly uniform response times"
    STRAIGHT_LINING = "straight_lining", "Same answer to every item"
    DUPLICATE_DEVICE = "duplicate_device", "Same IP and browser as another session"
    MODEL_MATCH = "model_match", "Answers identical to a language model's run"


class Flag(models.Model):
    """An integrity signal about a session, shown to the researcher."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="flags")
    kind = models.CharField(max_length=30, choices=FlagKind.choices)
    detail = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["session", "kind"], name="flag_one_per_kind"),
        ]

    def __str__(self):
        return f"{self.session_id}: {self.kind}"


class Withdrawal(models.Model):
    """What is left of a withdrawn session: no ids, no answers, only that it happened."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="withdrawals")
    started = models.DateTimeField()
    withdrawn = models.DateTimeField(auto_now_add=True)
    responses_deleted = models.PositiveIntegerField()
    transcripts_deleted = models.PositiveIntegerField(default=0)
    state_before = models.CharField(max_length=20)

    class Meta:
        ordering = ["-withdrawn"]

    def __str__(self):
        return f"{self.study.slug}: withdrawal at {self.withdrawn:%Y-%m-%d %H:%M}"
