"""Researcher side: studies with their recruitment links, live progress, exports and data."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from participants import services
from participants.models import Flag, Response, Session, SessionState, Study, Withdrawal
from participants.recruitment import recruitment_url

EXPORTS = {
    "csv": ("text/csv", "csv", services.export_csv),
    "json": ("application/json", "json", services.export_json),
    "psych201": ("application/x-ndjson", "jsonl", services.export_psych201),
}


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    """Studies: link to paste into the platform, live progress, preview, data out."""

    change_form_template = "admin/participants/study/change_form.html"
    list_display = ("title", "slug", "task_version", "source", "status", "progress_summary")
    list_filter = ("status", "source")
    search_fields = ("title", "slug")
    prepopulated_fields = {"slug": ("title",)}
    autocomplete_fields = ()
    actions = ("make_dataset", "open_studies", "pause_studies", "close_studies")
    fieldsets = (
        (None, {"fields": ("title", "slug", "task_version", "status")}),
        ("Participants", {"fields": ("consent_markdown", "estimated_minutes", "ask_demographics")}),
        ("Sample", {"fields": ("target_n", "conditions", "quotas", "time_limit_minutes", "seed")}),
        (
            "Recruitment",
            {"fields": ("source", "sona_credit_url", "completion_code", "screenout_code")},
        ),
    )

    @admin.display(description="progress")
    def progress_summary(self, obj: Study) -> str:
        """Completed of target, and how many are running."""
        p = services.study_progress(study=obj)
        return (
            f"{p['completed']}/{obj.target_n} completed, {p['running']} running "
            f"({p['held_not_started']} not at the task yet)"
        )

    def get_urls(self):
        """Add the export and make-dataset endpoints under each study."""
        extra = [
            path(
                "<int:pk>/export/<str:fmt>/",
                self.admin_site.admin_view(self.export_view),
                name="participants_study_export",
            ),
            path(
                "<int:pk>/make-dataset/",
                self.admin_site.admin_view(require_POST(self.make_dataset_view)),
                name="participants_study_make_dataset",
            ),
        ]
        return extra + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Show recruitment URL, progress, preview and export links above the form."""
        extra_context = extra_context or {}
        study = self.get_object(request, object_id)
        if study is not None:
            base = request.build_absolute_uri("/")
            extra_context.update(
                {
                    "recruitment_url": recruitment_url(study, base),
                    "progress": services.study_progress(study=study),
                    "preview_url": reverse("participants:preview", kwargs={"pk": study.pk}),
                    "exports": [
                        (
                            label,
                            reverse(
                                "admin:participants_study_export",
                                kwargs={"pk": study.pk, "fmt": fmt},
                            ),
                        )
                        for fmt, label in (
                            ("csv", "Responses (CSV)"),
                            ("json", "Responses (JSON)"),
                            ("psych201", "Psych-201 JSONL"),
                        )
                    ],
                    "make_dataset_url": reverse(
                        "admin:participants_study_make_dataset", kwargs={"pk": study.pk}
                    ),
                }
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def export_view(self, request, pk: int, fmt: str):
        """Download the study's data in one format."""
        study = get_object_or_404(Study, pk=pk)
        if not self.has_view_permission(request, study) or fmt not in EXPORTS:
            return HttpResponse(status=404)
        content_type, ext, export = EXPORTS[fmt]
        response = HttpResponse(export(study=study), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{study.slug}.{ext}"'
        return response

    def make_dataset_view(self, request, pk: int):
        """Turn the completed sessions into a collected human dataset."""
        study = get_object_or_404(Study, pk=pk)
        if not self.has_change_permission(request, study):
            return HttpResponse(status=403)
        self._make_dataset(request, study)
        return redirect("admin:participants_study_change", study.pk)

    def _make_dataset(self, request, study: Study) -> None:
        try:
            dataset, created = services.make_human_dataset(study=study)
        except services.ParticipationError as exc:
            self.message_user(request, f"{study.slug}: {exc}", messages.WARNING)
            return
        verb = "created" if created else "already exists, unchanged:"
        self.message_user(
            request,
            f"Human dataset {verb} {dataset.slug} ({dataset.n_participants} participants).",
            messages.SUCCESS,
        )

    @admin.action(description="Make a human dataset from completed sessions")
    def make_dataset(self, request, queryset):
        """Admin action wrapper around `services.make_human_dataset`."""
        for study in queryset:
            self._make_dataset(request, study)

    @admin.action(description="Open for participants")
    def open_studies(self, request, queryset):
        """Let new participants start."""
        queryset.update(status="open")

    @admin.action(description="Pause (no new participants)")
    def pause_studies(self, request, queryset):
        """Stop new starts; running sessions continue."""
        queryset.update(status="paused")

    @admin.action(description="Close")
    def close_studies(self, request, queryset):
        """Stop new starts for good."""
        queryset.update(status="closed")


class ResponseInline(admin.TabularInline):
    """A session's answers, read-only."""

    model = Response
    extra = 0
    can_delete = False
    fields = ("position", "item_key", "answer", "feedback", "rt_ms", "client_ts", "server_ts")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        """Answers come only from participants."""
        return False


class FlagInline(admin.TabularInline):
    """Integrity flags of a session."""

    model = Flag
    extra = 0
    can_delete = False
    fields = ("kind", "detail", "created")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        """Flags are computed, not entered."""
        return False


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    """Participant sessions; read-only apart from marking a platform return."""

    list_display = ("pk", "study", "state", "condition", "started", "finished", "flag_list")
    list_filter = ("study", "state", "flags__kind")
    inlines = (ResponseInline, FlagInline)
    actions = ("mark_returned",)
    readonly_fields = (
        "study",
        "recruitment_id",
        "recruitment",
        "state",
        "condition",
        "order_seed",
        "trial_order",
        "consented",
        "demographics",
        "instructions_done",
        "started",
        "deadline",
        "finished",
    )
    exclude = ("ip_hash", "ua_hash", "demographics_done")

    def get_queryset(self, request):
        """Flags are listed, so fetch them with the sessions."""
        return super().get_queryset(request).prefetch_related("flags")

    @admin.display(description="flags")
    def flag_list(self, obj: Session) -> str:
        """Flag kinds, comma-separated."""
        return ", ".join(f.kind for f in obj.flags.all())

    def has_add_permission(self, request):
        """Sessions start only from a study link."""
        return False

    @admin.action(description="Mark as returned on the platform")
    def mark_returned(self, request, queryset):
        """Free the slots of participants who returned the study."""
        for session in queryset.filter(state=SessionState.STARTED):
            services.mark_returned(session=session)


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    """All integrity flags, to review by kind."""

    list_display = ("session_link", "kind", "detail", "created")
    list_filter = ("kind", "session__study")
    readonly_fields = ("session", "kind", "detail", "created")

    @admin.display(description="session")
    def session_link(self, obj: Flag) -> str:
        """Link to the flagged session."""
        url = reverse("admin:participants_session_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, obj.session)

    def has_add_permission(self, request):
        """Flags are computed, not entered."""
        return False


@admin.register(Withdrawal)
class WithdrawalAdmin(admin.ModelAdmin):
    """The audit trail of withdrawals (no personal data)."""

    list_display = ("study", "started", "withdrawn", "responses_deleted", "state_before")
    list_filter = ("study",)
    readonly_fields = (
        "study",
        "started",
        "withdrawn",
        "responses_deleted",
        "transcripts_deleted",
        "state_before",
    )

    def has_add_permission(self, request):
        """Only a participant's withdrawal creates these."""
        return False

    def has_change_permission(self, request, obj=None):
        """An audit row is never edited."""
        return False
