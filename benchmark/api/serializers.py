"""Serializers of the read-only task and dataset API."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from benchmark.models import (
    HumanDataset,
    Item,
    ItemDistribution,
    ScaleNorm,
    Task,
    TaskVersion,
    Transcript,
)


class TaskSerializer(serializers.ModelSerializer):
    """A task with the number of its versions and its newest version."""

    n_versions = serializers.SerializerMethodField()
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = (
            "slug",
            "family",
            "title",
            "kind",
            "description",
            "created",
            "n_versions",
            "latest_version",
        )

    @staticmethod
    def _newest_first(task) -> list:
        # The viewset prefetches the versions newest first; a bare Task asks the database.
        newest_first = getattr(task, "newest_first", None)
        if newest_first is None:
            newest_first = list(task.versions.defer("spec").order_by("-number"))
        return newest_first

    def get_n_versions(self, task) -> int:
        """How many versions the task has."""
        return len(self._newest_first(task))

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {
                "id": {"type": "integer"},
                "number": {"type": "integer"},
                "spec_hash": {"type": "string"},
            },
        }
    )
    def get_latest_version(self, task):
        """Id, number and hash of the newest version (null when there is none)."""
        versions = self._newest_first(task)
        if not versions:
            return None
        v = versions[0]
        return {"id": v.pk, "number": v.number, "spec_hash": v.spec_hash}


class VersionSerializer(serializers.ModelSerializer):
    """A version without its spec (list view)."""

    task = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    n_items = serializers.IntegerField(read_only=True)
    superseded = serializers.SerializerMethodField()

    class Meta:
        model = TaskVersion
        fields = (
            "id",
            "task",
            "number",
            "spec_hash",
            "source_path",
            "created",
            "n_items",
            "superseded",
        )

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {"reason": {"type": "string"}, "by": {"type": "integer"}},
        }
    )
    def get_superseded(self, version) -> dict | None:
        """Null for a current version; else why it is superseded and by which version id."""
        note = getattr(version, "supersession", None)
        if note is None:
            return None
        return {"reason": note.reason, "by": note.superseded_by_id}


class VersionDetailSerializer(VersionSerializer):
    """A version with its canonical spec."""

    class Meta(VersionSerializer.Meta):
        fields = (*VersionSerializer.Meta.fields, "spec")


class ItemSerializer(serializers.ModelSerializer):
    """One item of a version."""

    class Meta:
        model = Item
        fields = ("id", "version", "key", "position", "text", "options", "scale", "reverse", "data")


class ScaleNormSerializer(serializers.ModelSerializer):
    """One published norm of a ``norms`` dataset."""

    class Meta:
        model = ScaleNorm
        fields = ("scale", "group", "statistic", "mean", "sd", "n", "source")


class DatasetSerializer(serializers.ModelSerializer):
    """A human dataset; a ``norms`` dataset lists its norms."""

    task = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    norms = ScaleNormSerializer(many=True, read_only=True)

    class Meta:
        model = HumanDataset
        fields = (
            "id",
            "slug",
            "name",
            "task",
            "source",
            "kind",
            "file_name",
            "content_sha256",
            "licence",
            "provenance",
            "n_participants",
            "created",
            "norms",
        )


class TranscriptSerializer(serializers.ModelSerializer):
    """A transcript without its text (list view)."""

    dataset = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    n_responses = serializers.SerializerMethodField()

    class Meta:
        model = Transcript
        fields = ("id", "dataset", "line", "participant", "experiment", "profile", "n_responses")

    def get_n_responses(self, transcript) -> int:
        """Responses in the transcript: its ``<<…>>`` spans, or its item answers."""
        return len(transcript.spans) or len(transcript.answers)


class TranscriptDetailSerializer(TranscriptSerializer):
    """A transcript with its text, spans, responses and RTs."""

    responses = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta(TranscriptSerializer.Meta):
        fields = (
            *TranscriptSerializer.Meta.fields,
            "text",
            "spans",
            "responses",
            "rts",
            "answers",
            "extra",
        )


class ItemDistributionSerializer(serializers.ModelSerializer):
    """Human answer proportions for one item."""

    dataset = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = ItemDistribution
        fields = ("id", "dataset", "item_key", "n", "proportions", "data")
