"""Admin: build a report from selected runs, follow its progress, see if it is stale, download."""

from django.contrib import admin, messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

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


# The runs' changelist gets the action from here, so benchmark does not import scoring.
ModelRunAdmin.actions = (*ModelRunAdmin.actions, build_report_action)


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
