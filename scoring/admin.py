"""Admin: build a report from selected runs or task versions, follow its progress, download."""

from django.contrib import admin, messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from benchmark.admin import TaskVersionAdmin
from benchmark.admin_runs import ModelRunAdmin
from scoring.models import Report, ReportState

# `scoring.services` (pandas, scipy, matplotlib) is imported where it is used: every process
# runs the admin's autodiscovery at start, a worker or a command too, and would pay ~2 s.


@admin.action(description="Build report from the selected runs", permissions=["add"])
def build_report_action(modeladmin, request, queryset):
    """Validate the selection, freeze it and queue the build (errors are shown, nothing stored)."""
    from scoring.services import ReportError, create_report

    try:
        report = create_report(runs=list(queryset), user=request.user)
    except ReportError as exc:
        modeladmin.message_user(request, f"No report: {exc}", messages.ERROR)
        return
    url = reverse("admin:scoring_report_change", args=[report.pk])
    modeladmin.message_user(
        request,
        format_html("Report {} queued: <a href='{}'>follow its progress</a>.", report.pk, url),
        messages.SUCCESS,
    )


def _queued(modeladmin, request, report) -> None:
    url = reverse("admin:scoring_report_change", args=[report.pk])
    modeladmin.message_user(
        request,
        format_html(
            "Report {} queued ({} runs, sections {}): <a href='{}'>follow its progress and "
            "download it when ready</a>.",
            report.pk,
            report.runs.count(),
            ", ".join(report.sections),
            url,
        ),
        messages.SUCCESS,
    )


@admin.action(
    description="Build report from every finished run of the selected versions",
    permissions=["build_report"],
)
def build_task_report_action(modeladmin, request, queryset):
    """Every finished run of the selected task versions against their human data."""
    from scoring.services import ReportError, create_task_report

    try:
        report = create_task_report(
            versions=queryset.select_related("task").order_by("task__slug", "number"),
            user=request.user,
        )
    except ReportError as exc:
        modeladmin.message_user(request, f"No report: {exc}", messages.ERROR)
        return
    _queued(modeladmin, request, report)


def _can_build_report(self, request) -> bool:
    """Versions are read-only; building a report from them needs the report's add permission."""
    return request.user.has_perm("scoring.add_report")


# The runs' and versions' changelists get the actions from here, so benchmark does not
# import scoring.
ModelRunAdmin.actions = (*ModelRunAdmin.actions, build_report_action)
TaskVersionAdmin.actions = (*(TaskVersionAdmin.actions or ()), build_task_report_action)
TaskVersionAdmin.has_build_report_permission = _can_build_report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """Reports with their progress, stale flag and download link; read-only."""

    list_display = ("id", "title", "state", "progress_percent", "stale", "download", "created")
    list_filter = ("state",)
    search_fields = ("title",)
    readonly_fields = (
        "title",
        "state",
        "progress_percent",
        "step",
        "error",
        "stale",
        "download",
        "sections",
        "params",
        "inputs",
        "code_version",
        "sha256",
        "created_by",
        "created",
        "started",
        "finished",
    )
    exclude = ("runs", "datasets", "task_versions", "file", "progress")

    def has_add_permission(self, request):
        """Reports are made from the runs' "Build report" action or the API."""
        return False

    def has_change_permission(self, request, obj=None):
        """A report is never edited: its inputs are frozen."""
        return False

    @admin.display(description="progress")
    def progress_percent(self, obj):
        """Share of the sections computed."""
        return f"{obj.progress * 100:.0f}% {obj.step}".strip()

    @admin.display(description="stale")
    def stale(self, obj):
        """Why the inputs differ from those the report was built from ('no' when they don't)."""
        from scoring.services import report_stale

        reasons = report_stale(obj)
        return "; ".join(reasons) if reasons else "no"

    @admin.display(description="download")
    def download(self, obj):
        """A link to the ZIP once built."""
        if obj.state != ReportState.DONE:
            return "-"
        url = reverse("admin:scoring_report_download", args=[obj.pk])
        return format_html("<a href='{}'>report-{}.zip</a>", url, obj.pk)

    def get_urls(self):
        """The download view next to the usual ones."""
        extra = [
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="scoring_report_download",
            )
        ]
        return extra + super().get_urls()

    def download_view(self, request, pk: int):
        """The ZIP of a built report."""
        if not self.has_view_permission(request):
            raise Http404
        from scoring.services import report_path

        report = get_object_or_404(Report, pk=pk, state=ReportState.DONE)
        return FileResponse(
            report_path(report).open("rb"), as_attachment=True, filename=f"report-{pk}.zip"
        )
