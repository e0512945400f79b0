"""Read-only API of tasks, versions, items, human datasets and transcripts."""

from django.db.models import Count, Prefetch
from rest_framework import viewsets

from benchmark.api import filters as f
from benchmark.api import serializers as s
from benchmark.api.pages import Pages
from benchmark.api.permissions import StaffOrViewPermission
from benchmark.models import HumanDataset, Item, ItemDistribution, Task, TaskVersion, Transcript


class ReadOnly(viewsets.ReadOnlyModelViewSet):
    """Common settings: staff or view permission, pagination."""

    permission_classes = (StaffOrViewPermission,)
    pagination_class = Pages


class TaskViewSet(ReadOnly):
    """Tasks, by slug, each with its newest version."""

    # The versions come in one extra query (without their heavy specs), not one per task.
    queryset = Task.objects.prefetch_related(
        Prefetch(
            "versions",
            queryset=TaskVersion.objects.defer("spec").order_by("-number"),
            to_attr="newest_first",
        )
    )
    serializer_class = s.TaskSerializer
    lookup_field = "slug"
    filterset_fields = ("family", "kind")
    search_fields = ("slug", "title", "description")
    ordering_fields = ("slug", "family", "created")


class VersionViewSet(ReadOnly):
    """Immutable task versions; the detail holds the spec."""

    filterset_class = f.VersionFilter
    search_fields = ("task__slug", "spec_hash")
    ordering_fields = ("created", "number")

    def get_queryset(self):
        """The list leaves the spec in the database."""
        # A GROUP BY query ignores Meta.ordering: pages need the order spelled out.
        versions = (
            TaskVersion.objects.select_related("task", "supersession")
            .annotate(n_items=Count("items"))
            .order_by("task__slug", "-number")
        )
        return versions if self.action == "retrieve" else versions.defer("spec")

    def get_serializer_class(self):
        """Spec only on the detail page."""
        return s.VersionDetailSerializer if self.action == "retrieve" else s.VersionSerializer


class ItemViewSet(ReadOnly):
    """Items of versions."""

    queryset = Item.objects.all()
    serializer_class = s.ItemSerializer
    filterset_class = f.ItemFilter
    search_fields = ("key", "text")
    ordering_fields = ("position", "key")


class DatasetViewSet(ReadOnly):
    """Human datasets."""

    queryset = HumanDataset.objects.select_related("task").prefetch_related("norms")
    serializer_class = s.DatasetSerializer
    filterset_class = f.DatasetFilter
    search_fields = ("slug", "name", "file_name")
    ordering_fields = ("slug", "created", "n_participants")


class TranscriptViewSet(ReadOnly):
    """Transcripts; the list leaves out the text, the detail has everything."""

    filterset_class = f.TranscriptFilter
    search_fields = ("participant",)
    ordering_fields = ("line", "participant")

    def get_queryset(self):
        """The list reads neither the texts nor the RTs nor the extra fields."""
        transcripts = Transcript.objects.select_related("dataset")
        if self.action == "retrieve":
            return transcripts
        return transcripts.defer("text", "rts", "extra")

    def get_serializer_class(self):
        """Text only on the detail page."""
        return s.TranscriptDetailSerializer if self.action == "retrieve" else s.TranscriptSerializer


class ItemDistributionViewSet(ReadOnly):
    """Per-item human answer proportions."""

    queryset = ItemDistribution.objects.select_related("dataset")
    serializer_class = s.ItemDistributionSerializer
    filterset_class = f.ItemDistributionFilter
    search_fields = ("item_key",)
    ordering_fields = ("item_key", "n")
