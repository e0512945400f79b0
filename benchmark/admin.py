"""Admin pages for tasks, versions, items and human datasets.

Versions, items, transcripts and item distributions are records: read-only here.
Datasets are added by importing a Psych-201 file (a button on their list).
"""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from benchmark.forms import Psych201UploadForm, SupersedeForm
from benchmark.models import (
    HumanDataset,
    Item,
    ItemDistribution,
    ScaleNorm,
    Task,
    TaskVersion,
    Transcript,
)


def _is_changelist(model_admin, request) -> bool:
    """Whether the request is for the model's list page (which can skip heavy fields)."""
    meta = model_admin.model._meta
    match = request.resolver_match
    return match is not None and match.url_name == f"{meta.app_label}_{meta.model_name}_changelist"


class ReadOnlyMixin:
    """Rows that are written by loaders and imports, never by hand."""

    def has_add_permission(self, request, obj=None):
        """Nothing is added by hand."""
        return False

    def has_change_permission(self, request, obj=None):
        """Nothing is edited (the change page shows the row read-only)."""
        return False

    def has_delete_permission(self, request, obj=None):
        """Nothing is deleted: results point at these rows."""
        return False


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """A read-only model admin (versions, items, transcripts, item distributions)."""


class VersionInline(ReadOnlyMixin, admin.TabularInline):
    """The versions of a task, newest first, with links."""

    model = TaskVersion
    fields = ("number", "spec_hash", "source_path", "created")
    readonly_fields = fields
    show_change_link = True
    extra = 0
    ordering = ("-number",)


class ScaleNormInline(ReadOnlyMixin, admin.TabularInline):
    """The published norms of a ``norms`` dataset: one row per scale and group."""

    model = ScaleNorm
    fields = ("scale", "group", "statistic", "mean", "sd", "n", "source")
    readonly_fields = fields
    extra = 0


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    """Tasks and their versions; content comes from YAML files (`manage.py load_tasks`)."""

    list_display = ("slug", "title", "family", "kind", "n_versions", "latest")
    list_filter = ("family", "kind")
    search_fields = ("slug", "title")
    readonly_fields = ("slug", "family", "kind", "created")
    fields = ("slug", "title", "family", "kind", "description", "created")
    inlines = (VersionInline,)

    def get_queryset(self, request):
        """Count versions in the same query; fetch all versions (without specs) in one more."""
        newest_first = TaskVersion.objects.defer("spec").order_by("-number")
        return (
            super()
            .get_queryset(request)
            .annotate(version_count=Count("versions"))
            .prefetch_related(Prefetch("versions", newest_first, to_attr="newest_first"))
        )

    def has_add_permission(self, request):
        """Tasks are made by loading spec files."""
        return False

    def has_delete_permission(self, request, obj=None):
        """Results point at tasks."""
        return False

    @admin.display(description="versions", ordering="version_count")
    def n_versions(self, task):
        """How many versions the task has."""
        return task.version_count

    @admin.display(description="latest version")
    def latest(self, task):
        """Number and hash of the newest version."""
        if not task.newest_first:
            return "–"
        version = task.newest_first[0]
        return f"v{version.number} ({version.spec_hash[:10]})"


class SupersededFilter(admin.SimpleListFilter):
    """Versions in use vs versions marked as superseded."""

    title = "status"
    parameter_name = "superseded"

    def lookups(self, request, model_admin):
        """The two states."""
        return (("no", "current"), ("yes", "superseded"))

    def queryset(self, request, queryset):
        """Filter on whether a supersession note exists."""
        if self.value() in {"yes", "no"}:
            return queryset.filter(supersession__isnull=self.value() == "no")
        return queryset


@admin.register(TaskVersion)
class TaskVersionAdmin(ReadOnlyAdmin):
    """One immutable spec, its hash and its items; a version can be marked superseded."""

    list_display = ("task", "number", "short_hash", "status", "n_items", "source_path", "created")
    list_filter = (SupersededFilter, "task__family", "task__kind", "task")
    search_fields = ("task__slug", "spec_hash")
    list_select_related = ("task", "supersession")
    fields = (
        "task",
        "number",
        "spec_hash",
        "status",
        "source_path",
        "created",
        "items_link",
        "spec_json",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        """Count items in the same query; the list page leaves the (large) specs out."""
        versions = super().get_queryset(request).annotate(item_count=Count("items"))
        return versions.defer("spec") if _is_changelist(self, request) else versions

    def get_urls(self):
        """Add the page that marks a version superseded."""
        return [
            path(
                "<int:pk>/supersede/",
                self.admin_site.admin_view(self.supersede_view),
                name="benchmark_taskversion_supersede",
            ),
            *super().get_urls(),
        ]

    def supersede_view(self, request, pk):
        """Say why a version must not be used any more (and which one replaces it)."""
        from benchmark.services.tasks import supersede_version

        if not request.user.has_perm("benchmark.add_supersession"):
            raise PermissionDenied
        version = self.get_object(request, str(pk))
        if version is None:
            return redirect("admin:benchmark_taskversion_changelist")
        form = SupersedeForm(request.POST or None, version=version)
        if request.method == "POST" and form.is_valid():
            supersede_version(
                version=version,
                reason=form.cleaned_data["reason"],
                by=form.cleaned_data["superseded_by"],
            )
            self.message_user(request, f"{version} is marked superseded.", messages.SUCCESS)
            return redirect("admin:benchmark_taskversion_change", version.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Mark {version} as superseded",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/benchmark/taskversion/supersede.html", context)

    @admin.display(description="status")
    def status(self, version):
        """Current, or superseded with the reason (and a link to mark it)."""
        note = getattr(version, "supersession", None)
        if note is None:
            url = reverse("admin:benchmark_taskversion_supersede", args=[version.pk])
            return format_html('current (<a href="{}">mark superseded</a>)', url)
        by = f" by v{note.superseded_by.number}" if note.superseded_by else ""
        return format_html("<strong>superseded{}</strong>: {}", by, note.reason)

    @admin.display(description="hash")
    def short_hash(self, version):
        """First characters of the spec hash."""
        return version.spec_hash[:12]

    @admin.display(description="items", ordering="item_count")
    def n_items(self, version):
        """How many items the version has."""
        return version.item_count

    @admin.display(description="items")
    def items_link(self, version):
        """Link to this version's items."""
        url = reverse("admin:benchmark_item_changelist") + f"?version__id__exact={version.pk}"
        return format_html('<a href="{}">{} items</a>', url, version.items.count())

    @admin.display(description="spec")
    def spec_json(self, version):
        """The canonical spec, pretty-printed."""
        return format_html("<pre>{}</pre>", json.dumps(version.spec, indent=2, ensure_ascii=False))


@admin.register(Item)
class ItemAdmin(ReadOnlyAdmin):
    """Items of every version."""

    list_display = ("key", "short_text", "version", "position", "scale", "reverse")
    list_filter = ("version__task", "scale", "reverse")
    search_fields = ("key", "text")
    list_select_related = ("version__task",)
    fields = ("version", "key", "position", "text", "options", "scale", "reverse", "data")
    readonly_fields = fields

    @admin.display(description="text")
    def short_text(self, item):
        """The first words of the item."""
        return item.text[:80]


@admin.register(HumanDataset)
class HumanDatasetAdmin(admin.ModelAdmin):
    """Human data: imported Psych-201 files, bundled data, collected studies and norms."""

    list_display = ("slug", "name", "task", "source", "kind", "participants", "created")
    list_filter = ("source", "kind", "task")
    search_fields = ("slug", "name", "file_name")
    inlines = (ScaleNormInline,)
    readonly_fields = (
        "slug",
        "source",
        "kind",
        "content_sha256",
        "file_name",
        "n_participants",
        "created",
        "transcripts_link",
    )
    fields = ("name", "task", "licence", "provenance", *readonly_fields)
    change_list_template = "admin/benchmark/humandataset/change_list.html"

    def has_add_permission(self, request):
        """Datasets are added by importing a file (see the import page)."""
        return False

    @admin.display(description="participants", ordering="n_participants")
    def participants(self, dataset):
        """Distinct people, or "unknown" when the source does not say."""
        return "unknown" if dataset.n_participants is None else f"{dataset.n_participants:,}"

    @admin.display(description="transcripts")
    def transcripts_link(self, dataset):
        """Link to the dataset's transcripts."""
        url = reverse("admin:benchmark_transcript_changelist") + f"?dataset__id__exact={dataset.pk}"
        return format_html('<a href="{}">{} transcripts</a>', url, dataset.transcripts.count())

    def get_urls(self):
        """Add the Psych-201 import page."""
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="benchmark_humandataset_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """Upload a Psych-201 file; it is validated whole, then imported in one transaction."""
        from benchmark.psych201 import Psych201Error
        from benchmark.services.datasets import import_psych201

        if not request.user.has_perm("benchmark.add_humandataset"):
            raise PermissionDenied
        form = Psych201UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                dataset, created = import_psych201(
                    source=upload,
                    file_name=upload.name,
                    slug=form.cleaned_data["slug"] or None,
                    name=form.cleaned_data["name"] or None,
                    task=form.cleaned_data["task"],
                )
            except Psych201Error as exc:
                form.add_error("file", f"{str(exc).rstrip('.')}. Nothing was imported.")
            except ValueError as exc:
                # The file is fine; the requested slug is not (malformed or taken).
                field = "slug" if form.cleaned_data["slug"] else None
                form.add_error(field, f"{str(exc).rstrip('.')}.")
            else:
                text = (
                    f"Imported {dataset.n_participants:,} participants into {dataset.slug}."
                    if created
                    else f"Already imported as {dataset.slug} (same content)."
                )
                self.message_user(request, text, messages.SUCCESS if created else messages.INFO)
                return redirect("admin:benchmark_humandataset_change", dataset.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Import a Psych-201 file",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/benchmark/humandataset/import.html", context)


@admin.register(Transcript)
class TranscriptAdmin(ReadOnlyAdmin):
    """One participant of a dataset: text, responses, RTs and profile."""

    list_display = ("participant", "dataset", "line", "n_responses", "n_rts", "profile")
    list_filter = ("dataset",)
    search_fields = ("participant",)
    list_select_related = ("dataset",)
    fields = (
        "dataset",
        "line",
        "participant",
        "experiment",
        "profile",
        "extra",
        "answers",
        "response_list",
        "rts",
        "text",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        """The list page leaves the (long) texts out."""
        transcripts = super().get_queryset(request)
        return transcripts.defer("text") if _is_changelist(self, request) else transcripts

    @admin.display(description="responses")
    def n_responses(self, transcript):
        """Number of responses (spans, or item answers)."""
        return len(transcript.spans) or len(transcript.answers)

    @admin.display(description="RTs")
    def n_rts(self, transcript):
        """Number of reaction times recorded (none: –)."""
        return len(transcript.rts) if transcript.rts is not None else "–"

    @admin.display(description="responses")
    def response_list(self, transcript):
        """The responses in order (the first 500 of a longer session)."""
        responses = transcript.responses
        shown = format_html_join(", ", "<code>{}</code>", ((r,) for r in responses[:500]))
        if len(responses) > 500:
            return format_html("{} … and {} more", shown, len(responses) - 500)
        return shown


@admin.register(ItemDistribution)
class ItemDistributionAdmin(ReadOnlyAdmin):
    """Published per-item human answer proportions."""

    list_display = ("item_key", "dataset", "n", "proportions")
    list_filter = ("dataset",)
    search_fields = ("item_key",)
    fields = ("dataset", "item_key", "n", "proportions", "data")
    readonly_fields = fields


# Endpoints, runs and responses have their own module.
from benchmark import admin_runs  # noqa: E402, F401
