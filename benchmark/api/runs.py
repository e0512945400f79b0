"""API for model endpoints and runs: list, queue (POST), progress, cancel, retry, resume."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from benchmark.api.fields import SlugReference
from benchmark.api.permissions import ModelPermissions
from benchmark.forms_runs import QueueRunForm
from benchmark.models import ModelEndpoint, ModelRun
from benchmark.services import runs as run_services
from benchmark.services.progress import run_progress, run_status


class EndpointSerializer(serializers.ModelSerializer):
    """A model endpoint (never any credential, only the variable's name)."""

    class Meta:
        model = ModelEndpoint
        fields = (
            "id",
            "name",
            "provider",
            "model",
            "revision",
            "api_key_env",
            "post_trained",
            "base_model",
            "release_date",
            "price_input_per_mtok",
            "price_output_per_mtok",
        )


class ProgressSerializer(serializers.Serializer):
    """How far a run is."""

    done = serializers.IntegerField()
    total = serializers.IntegerField()
    units_done = serializers.IntegerField()
    units_failed = serializers.IntegerField()
    units_total = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.CharField())
    rate_per_min = serializers.FloatField(allow_null=True)
    eta_seconds = serializers.FloatField(allow_null=True)
    cost_usd = serializers.DecimalField(max_digits=12, decimal_places=6)
    starting = serializers.BooleanField(
        help_text="no rate yet: the model is loading or the first answers are awaited"
    )


class RunSerializer(serializers.ModelSerializer):
    """A run with its progress."""

    endpoint = serializers.SlugRelatedField(slug_field="name", read_only=True)
    task = serializers.CharField(source="task_version.task.slug", read_only=True)
    progress = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()

    class Meta:
        model = ModelRun
        fields = (
            "id",
            "endpoint",
            "task",
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
            "status",
            "error",
            "created",
            "started",
            "resumed",
            "finished",
            "progress",
        )

    @extend_schema(responses=ProgressSerializer)
    def get_progress(self, run) -> dict:
        """Progress of the run."""
        return ProgressSerializer(run_progress(run)).data

    def get_status(self, run) -> str:
        """The state in words, e.g. "Completed with 2 failed units"."""
        return run_status(run)


class QueueRunSerializer(serializers.Serializer):
    """What to queue: the same fields as the admin's "Queue a model run" form."""

    endpoint = SlugReference(slug_field="name", queryset=ModelEndpoint.objects.all())
    task_version = serializers.IntegerField()
    mode = serializers.CharField(default="participant")
    scoring_mode = serializers.CharField(required=False, allow_blank=True, default="")
    samples = serializers.IntegerField(default=1)
    dataset = serializers.IntegerField(required=False, allow_null=True)
    prompt_variant = serializers.CharField(default="neutral")
    with_profile = serializers.BooleanField(default=False)
    temperature = serializers.FloatField(required=False, allow_null=True)
    seed = serializers.IntegerField(default=0)
    budget_usd = serializers.DecimalField(
        max_digits=12, decimal_places=4, required=False, allow_null=True
    )
    max_trials = serializers.IntegerField(required=False, allow_null=True)
    max_participants = serializers.IntegerField(required=False, allow_null=True)
    batch_size = serializers.IntegerField(default=10)
    estimate_only = serializers.BooleanField(default=False)


class EndpointViewSet(viewsets.ReadOnlyModelViewSet):
    """Registered model endpoints."""

    queryset = ModelEndpoint.objects.all()
    serializer_class = EndpointSerializer
    permission_classes = (ModelPermissions,)
    filterset_fields = ("provider", "post_trained")
    search_fields = ("name", "model")


class RunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Model runs: queue one with POST, follow it with GET, control it with the actions."""

    queryset = ModelRun.objects.select_related("endpoint", "task_version__task").all()
    serializer_class = RunSerializer
    permission_classes = (ModelPermissions,)
    filterset_fields = ("state", "mode", "endpoint__name", "task_version__task__slug")
    ordering_fields = ("created", "id")

    @extend_schema(request=QueueRunSerializer, responses={201: RunSerializer})
    def create(self, request, *args, **kwargs):
        """Queue a run (or, with ``estimate_only``, return its estimate)."""
        incoming = QueueRunSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = {k: v for k, v in incoming.validated_data.items() if v is not None}
        data["endpoint"] = data["endpoint"].pk
        form = QueueRunForm(data)
        if not form.is_valid():
            return Response(form.errors.get_json_data(), status=status.HTTP_400_BAD_REQUEST)
        try:
            plan = run_services.estimate_cost(**form.service_kwargs())
            estimate = {
                "units": len(plan.units),
                "calls": plan.calls,
                "input_tokens": plan.input_tokens,
                "output_tokens": plan.output_tokens,
                "cost_usd": str(plan.cost_usd),
            }
            if incoming.validated_data["estimate_only"]:
                return Response({"estimate": estimate})
            run = run_services.queue_run(**form.queue_kwargs(), user=request.user)
        except run_services.RunError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        body = {**RunSerializer(run).data, "estimate": estimate}
        return Response(body, status=status.HTTP_201_CREATED)

    def _control(self, request, fn):
        try:
            run = fn(run=self.get_object())
        except run_services.RunError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(RunSerializer(run).data)

    @extend_schema(request=None, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel the run; finished responses are kept."""
        return self._control(request, run_services.cancel_run)

    @extend_schema(request=None, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Give the failed units fresh attempts."""
        return self._control(request, run_services.retry_failed)

    @extend_schema(request=None, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Continue a paused or cancelled run."""
        return self._control(request, run_services.resume_run)
