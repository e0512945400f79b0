"""API for reports: create (POST), progress and stale flag (GET), download the ZIP."""

from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from benchmark.api.fields import SlugReference
from benchmark.api.permissions import ModelPermissions
from benchmark.models import HumanDataset, ModelRun
from scoring.models import Report, ReportState
from scoring.services import SECTION_KINDS, ReportError, create_report, report_path, report_stale


class ReportSerializer(serializers.ModelSerializer):
    """A report: its frozen selection, progress, stale reasons and download link."""

    stale = serializers.SerializerMethodField()
    download = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = (
            "id",
            "title",
            "runs",
            "datasets",
            "task_versions",
            "sections",
            "params",
            "inputs",
            "code_version",
            "state",
            "progress",
            "step",
            "error",
            "sha256",
            "stale",
            "download",
            "created",
            "started",
            "finished",
        )

    def get_stale(self, report) -> list[str]:
        """Why the inputs changed since the report was frozen (empty: not stale)."""
        return report_stale(report)

    def get_download(self, report) -> str | None:
        """URL of the ZIP once built."""
        if report.state != ReportState.DONE:
            return None
        return f"/api/v1/reports/{report.pk}/download/"


class CreateReportSerializer(serializers.Serializer):
    """What to build: runs (ids), optional datasets (slugs), sections and parameters."""

    runs = serializers.PrimaryKeyRelatedField(
        many=True,
        allow_empty=False,
        queryset=ModelRun.objects.select_related("task_version__task"),
    )
    datasets = SlugReference(
        many=True, slug_field="slug", queryset=HumanDataset.objects.all(), required=False
    )
    sections = serializers.ListField(
        child=serializers.ChoiceField(choices=SECTION_KINDS), required=False
    )
    params = serializers.DictField(required=False)
    title = serializers.CharField(required=False, allow_blank=True, default="")


class ReportViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Alignment reports: POST to build one, GET to follow it, download when done."""

    queryset = Report.objects.prefetch_related("runs", "datasets", "task_versions").all()
    serializer_class = ReportSerializer
    permission_classes = (ModelPermissions,)
    filterset_fields = ("state",)

    @extend_schema(request=CreateReportSerializer, responses={201: ReportSerializer})
    def create(self, request, *args, **kwargs):
        """Validate and freeze the selection, queue the build; 400 names what is wrong."""
        incoming = CreateReportSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            report = create_report(
                runs=data["runs"],
                datasets=data.get("datasets", []),
                sections=data.get("sections") or None,
                params=data.get("params"),
                title=data["title"],
                user=request.user,
            )
        except ReportError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ReportSerializer(report).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={200: OpenApiResponse(description="the report ZIP"), 409: None},
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The ZIP bundle (409 while it is not built)."""
        report = self.get_object()
        if report.state != ReportState.DONE:
            return Response(
                {"detail": f"report {report.pk} is {report.state}"},
                status=status.HTTP_409_CONFLICT,
            )
        return FileResponse(
            report_path(report).open("rb"),
            as_attachment=True,
            filename=f"report-{report.pk}.zip",
            content_type="application/zip",
        )
