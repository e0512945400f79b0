"""Admin pages for model endpoints, runs and their responses."""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from benchmark.forms_runs import QueueRunForm
from benchmark.models import ModelEndpoint, ModelResponse, ModelRun, WorkUnit
from benchmark.services import runs as run_services


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
    fields = ("index", "state", "attempts", "expected", "lease_until", "last_error")
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

    list_display = (
        "id",
        "endpoint",
        "task_version",
        "mode",
        "scoring_mode",
        "state",
        "progress",
        "cost_usd",
        "created",
    )
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
        "finished",
    )
    fields = readonly_fields

    def has_change_permission(self, request, obj=None):
        """Runs are changed through the actions, never edited."""
        return False

    @admin.display(description="progress")
    def progress(self, run):
        """Responses done of expected."""
        p = run_services.run_progress(run)
        return f"{p.done}/{p.total}"

    @admin.display(description="progress")
    def progress_panel(self, run):
        """Done/total, units, rate, ETA, cost and the last errors of a run."""
        p = run_services.run_progress(run)
        rows = [
            ("responses", f"{p.done} of {p.total}"),
            ("units", f"{p.units_done} done, {p.units_failed} failed, of {p.units_total}"),
            ("rate", f"{p.rate_per_min:.1f} per minute" if p.rate_per_min else "–"),
            ("time left", f"{p.eta_seconds / 60:.1f} min" if p.eta_seconds else "–"),
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
        """Add the "queue a run" page."""
        return [
            path(
                "queue/",
                self.admin_site.admin_view(self.queue_view),
                name="benchmark_modelrun_queue",
            ),
            *super().get_urls(),
        ]

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
