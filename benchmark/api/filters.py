"""Filters of the task and dataset API.

Tasks are named by slug (``?task=``) and datasets by slug (``?dataset=``) everywhere.
"""

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from benchmark.models import HumanDataset, Item, ItemDistribution, TaskVersion, Transcript


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.Filter):
    """An object id as a plain integer: an id that does not exist matches nothing.

    (A model-choice filter answers 400 for it, which refuses a well-formed request.)
    """

    field_class = forms.IntegerField


class VersionFilter(django_filters.FilterSet):
    """Versions by task slug, spec hash and number."""

    task = django_filters.CharFilter(field_name="task__slug")

    class Meta:
        model = TaskVersion
        fields = ("task", "spec_hash", "number")


class ItemFilter(django_filters.FilterSet):
    """Items by version id, task slug, scale and key."""

    task = django_filters.CharFilter(field_name="version__task__slug")
    version = IdFilter(field_name="version_id")

    class Meta:
        model = Item
        fields = ("version", "task", "scale", "key", "reverse")


class DatasetFilter(django_filters.FilterSet):
    """Datasets by task slug, source, kind and slug."""

    task = django_filters.CharFilter(field_name="task__slug")

    class Meta:
        model = HumanDataset
        fields = ("task", "source", "kind", "slug")


class TranscriptFilter(django_filters.FilterSet):
    """Transcripts by dataset slug, participant, experiment and profile fields.

    Profile values are kept as imported ("Depression", "depression"), so the profile
    filters ignore case.
    """

    dataset = django_filters.CharFilter(field_name="dataset__slug")
    diagnosis = django_filters.CharFilter(field_name="profile__diagnosis", lookup_expr="iexact")
    gender = django_filters.CharFilter(field_name="profile__gender", lookup_expr="iexact")

    class Meta:
        model = Transcript
        fields = ("dataset", "participant", "experiment", "diagnosis", "gender")


class ItemDistributionFilter(django_filters.FilterSet):
    """Item distributions by dataset slug and item key."""

    dataset = django_filters.CharFilter(field_name="dataset__slug")

    class Meta:
        model = ItemDistribution
        fields = ("dataset", "item_key")
