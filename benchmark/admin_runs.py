"""Admin pages for model endpoints, runs and their responses."""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from benchmark.forms_runs import QueueRunForm
from benchmark.models import ModelEndpoint, ModelResponse, ModelRun, RunState, WorkUnit
from benchmark.services import runs as run_services
from benchmark.services.progress import run_progress, run_status, time_left_text

# The run page's buttons: verb → (service, what the message says was done).
CONTROLS = {
    "cancel": (run_services.cancel_run, "Cancelled"),
    "resume": (run_services.resume_run, "Resumed"),
    "retry": (run_services.retry_failed, "Retried the failed units of"),
}


@admin.register(ModelEndpoint)
class ModelEndpointAdmin(admin.ModelAdmin):
    """Register and edit models; keys stay in the environment variable named here."""

    list_display = (
        "name",
        "provider",
        "model",
        "revision",
        "post_trained",
        "release_date",
        "price_input_per_mtok",
        "price_output_per_mtok",
    )
    list_filter = ("provider", "post_trained")
    search_fields = ("name", "model")
    autocomplete_fields = ("base_model",)
    fieldsets = (
        (None, {"fields": ("name", "provider", "model", "revision", "settings", "api_key_env")}),
        ("Model facts", {"fields": ("base_model", "post_trained", "release_date")}),
        (
            "Prices (USD per million tokens)",
            {"fields": ("price_input_per_mtok", "price_output_per_mtok")},
        ),
    )

    @staticmethod
    def _may_configure(request) -> bool:
        # An endpoint decides where workers send requests and which variable they send
        # as a key: beyond the add/change permissions it takes an explicit grant.
        return request.user.is_superuser or request.user.has_perm("benchmark.configure_endpoint")

    def has_add_permission(self, request):
        """Superusers, or staff with the add and the ``configure_endpoint`` permissions."""
        return self._may_configure(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        """Superusers, or staff with the change and the ``configure_endpoint`` permissions."""
        return self._may_configure(request) and super().has_change_permission(request, obj)


class WorkUnitInline(admin.TabularInline):
    """The units of a run, read-only."""

    model = WorkUnit
    fields = (
        "index",
        "state",
        "attempts",
        "lost_leases",
        "expected",
        "lease_until",
        "worker",
        "last_error",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        """Units are made by queueing a run."""
        return False


@admin.register(ModelRun)
class ModelRunAdmin(admin.ModelAdmin):
    """Queue runs, follow their progress, cancel, retry and resume them."""

    # Narrow enough for a 1280 px window beside the navigation and the filters.
    list_display = ("id", "run", "status", "progress", "cost", "created_short")
    list_filter = ("state", "mode", "scoring_mode", "endpoint")
    search_fields = ("endpoint__name", "task_version__task__slug")
    list_select_related = ("endpoint", "task_version__task")
    actions = ("cancel_runs", "retry_failed_units", "resume_runs")
    inlines = (WorkUnitInline,)
    readonly_fields = (
        "progress_panel",
        "endpoint",
        "task_version",
        "dataset",
        "mode",
        "scoring_mode",
        "prompt_variant",
        "prompt_hash",
        "with_profile",
        "params",
        "seed",
        "samples_per_item",
        "max_trials",
        "budget_usd",
        "estimated_cost_usd",
        "cost_usd",
        "state",
        "error",
        "created_by",
        "created",
        "started",
        "resumed",
        "finished",
    )
    fields = readonly_fields
    change_form_template = "admin/benchmark/modelrun/change_form.html"

    class Media:
        css = {"all": ("benchmark/admin_runs.css",)}

    def has_change_permission(self, request, obj=None):
        """Runs are changed through the actions, never edited."""
        return False

    @admin.display(description="progress")
    def progress(self, run):
        """Responses done of expected."""
        p = run_progress(run)
        return f"{p.done}/{p.total}"

    @admin.display(description="run", ordering="endpoint__name")
    def run(self, run):
        """Endpoint, then task version and mode on a second line."""
        version = run.task_version
        return format_html(
            "{}<br><small>{} v{} · {}</small>",
            run.endpoint.name,
            version.task.slug,
            version.number,
            run.mode,
        )

    @admin.display(description="cost (USD)", ordering="cost_usd")
    def cost(self, run):
        """Cost so far."""
        return f"{run.cost_usd:.4f}"

    @admin.display(description="created", ordering="created")
    def created_short(self, run):
        """When it was queued, in the server's time zone."""
        from django.utils import timezone

        return f"{timezone.localtime(run.created):%Y-%m-%d %H:%M}"

    @admin.display(description="state", ordering="state")
    def status(self, run):
        """The state in words ("Completed with 2 failed units")."""
        return run_status(run)

    @admin.display(description="progress")
    def progress_panel(self, run):
        """State, done/total, units, rate, time left, cost and the last errors of a run."""
        p = run_progress(run)
        rows = [
            ("state", run_status(run, p)),
            ("responses", f"{p.done} of {p.total}"),
            ("units", f"{p.units_done} done, {p.units_failed} failed, of {p.units_total}"),
            ("rate", f"{p.rate_per_min:.1f} per minute" if p.rate_per_min else "–"),
            ("time left", time_left_text(run, p)),
            ("cost", f"{p.cost_usd:.4f} USD (estimate {run.estimated_cost_usd:.4f})"),
        ]
        responses = (
            reverse("admin:benchmark_modelresponse_changelist") + f"?run__id__exact={run.pk}"
        )
        table = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        errors = format_html_join("", "<li>{}</li>", ((e,) for e in p.errors))
        return format_html(
            '<table>{}</table><ul class="errorlist">{}</ul><a href="{}">See every response</a>',
            table,
            errors,
            responses,
        )

    def get_urls(self):
        """Add the "queue a run" page and the run page's cancel / resume / retry buttons."""
        return [
            path(
                "queue/",
                self.admin_site.admin_view(self.queue_view),
                name="benchmark_modelrun_queue",
            ),
            path(
                "<int:run_id>/control/<str:verb>/",
                self.admin_site.admin_view(self.control_view),
                name="benchmark_modelrun_control",
            ),
            *super().get_urls(),
        ]

    def controls_for(self, request, run) -> list[tuple[str, str]]:
        """The buttons the run page shows: (verb, label), only those that apply."""
        if not self.has_add_permission(request):
            return []
        buttons = []
        if run.state in run_services.ACTIVE_RUN_STATES:
            buttons.append(("cancel", "Cancel the run"))
        if run.state in (RunState.PAUSED, RunState.CANCELLED):
            buttons.append(("resume", "Resume the run"))
        if run_services.retryable_units(run).exists():
            buttons.append(("retry", "Retry failed units"))
        return buttons

    def control_view(self, request, run_id: int, verb: str):
        """POST: cancel, resume or retry one run through the services; back to its page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_add_permission(request):
            raise PermissionDenied
        if verb not in CONTROLS:
            raise PermissionDenied
        run = get_object_or_404(ModelRun, pk=run_id)
        fn, done = CONTROLS[verb]
        units = run_services.retryable_units(run).count() if verb == "retry" else None
        try:
            fn(run=run)
        except run_services.RunError as exc:
            self.message_user(request, f"Run {run.pk}: {exc}", messages.ERROR)
        else:
            extra = f" ({units} unit{'s' if units != 1 else ''} queued again)" if units else ""
            self.message_user(request, f"{done} run {run.pk}{extra}.", messages.SUCCESS)
        return redirect("admin:benchmark_modelrun_change", run.pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The run page, with its control buttons."""
        run = self.get_object(request, object_id)
        extra = {**(extra_context or {})}
        if run is not None:
            extra["run_controls"] = self.controls_for(request, run)
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def add_view(self, request, form_url="", extra_context=None):
        """Adding a run means queueing one."""
        return redirect("admin:benchmark_modelrun_queue")

    def queue_view(self, request):
        """Pick endpoint, task version, mode…; see the estimate; queue."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = QueueRunForm(request.POST or None)
        plan = None
        if request.method == "POST" and form.is_valid():
            try:
                plan = run_services.estimate_cost(**form.service_kwargs())
                if "queue" in request.POST:
                    run = run_services.queue_run(**form.queue_kwargs(), user=request.user)
                    self.message_user(
                        request,
                        f"Queued run {run.pk}: {plan.calls:,} model calls, "
                        f"estimated {plan.cost_usd:.4f} USD.",
                        messages.SUCCESS,
                    )
                    return redirect("admin:benchmark_modelrun_change", run.pk)
            except run_services.RunError as exc:
                form.add_error(None, str(exc))
                plan = None
        context = {
            **self.admin_site.each_context(request),
            "title": "Queue a model run",
            "form": form,
            "plan": plan,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/benchmark/modelrun/queue.html", context)

    def _act(self, request, queryset, verb, fn):
        done = 0
        for run in queryset:
            try:
                fn(run=run)
                done += 1
            except run_services.RunError as exc:
                self.message_user(request, f"Run {run.pk}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} run(s).", messages.SUCCESS)

    @admin.action(description="Cancel the selected runs", permissions=["add"])
    def cancel_runs(self, request, queryset):
        """Stop runs; finished responses are kept."""
        self._act(request, queryset, "Cancelled", run_services.cancel_run)

    @admin.action(description="Retry the failed units of the selected runs", permissions=["add"])
    def retry_failed_units(self, request, queryset):
        """Fresh attempts for failed units."""
        self._act(request, queryset, "Retried", run_services.retry_failed)

    @admin.action(description="Resume the selected runs", permissions=["add"])
    def resume_runs(self, request, queryset):
        """Continue paused or cancelled runs."""
        self._act(request, queryset, "Resumed", run_services.resume_run)


@admin.register(ModelResponse)
class ModelResponseAdmin(admin.ModelAdmin):
    """Every answer of every run, with its prompt, raw output and log-probabilities."""

    list_display = (
        "run",
        "item_key",
        "sample_index",
        "answer",
        "scoring_mode",
        "logprob",
        "cached",
    )
    list_filter = ("scoring_mode", "cached", "run")
    search_fields = ("item_key", "answer", "raw_output")
    list_select_related = ("run",)
    readonly_fields = (
        "run",
        "item_key",
        "sample_index",
        "scoring_mode",
        "answer",
        "distribution_table",
        "mass_outside",
        "logprob",
        "prompt",
        "raw_output",
        "details_json",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "latency_ms",
        "cached",
        "created",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        """Responses come from runs."""
        return False

    def has_change_permission(self, request, obj=None):
        """Responses are records."""
        return False

    @admin.display(description="distribution")
    def distribution_table(self, obj):
        """Option probabilities, highest first."""
        if not obj.distribution:
            return "–"
        rows = sorted(obj.distribution.items(), key=lambda kv: -kv[1])
        return format_html(
            "<table>{}</table>",
            format_html_join("", "<tr><th>{}</th><td>{:.4f}</td></tr>", rows),
        )

    @admin.display(description="details")
    def details_json(self, obj):
        """Per-option log-probabilities, per-span scores, feedback."""
        return format_html("<pre>{}</pre>", json.dumps(obj.details, indent=2)[:20000])
