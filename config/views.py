"""The start page: what is running here and where to go next."""

from django.conf import settings
from django.db import connection
from django.shortcuts import render
from django.urls import reverse

from benchmark.models import ModelRun, Task
from benchmark.services.progress import run_progress
from benchmark.services.runs import ACTIVE_RUN_STATES
from participants.models import Study, StudyStatus


def home(request):
    """Mode, database and worker; for staff also open studies and queued or running runs.

    Anonymous visitors see no study or run: a study's link is for the people recruited
    to it, not for anyone who finds the server.
    """
    staff = request.user.is_authenticated and request.user.is_staff
    context = {
        "embedded": not settings.BROKER_URL,
        "database": connection.vendor,
        "broker": settings.BROKER_URL.split("://", 1)[0] if settings.BROKER_URL else "in-process",
        "staff": staff,
        "n_tasks": Task.objects.count(),
    }
    if staff:
        studies = Study.objects.filter(status=StudyStatus.OPEN).select_related("task_version__task")
        runs = (
            ModelRun.objects.filter(state__in=ACTIVE_RUN_STATES)
            .select_related("endpoint", "task_version__task")
            .order_by("created")[:20]
        )
        context["studies"] = [
            (s, request.build_absolute_uri(reverse("participants:start", args=[s.slug])))
            for s in studies.order_by("slug")[:50]
        ]
        context["runs"] = [(r, run_progress(r)) for r in runs]
    return render(request, "home.html", context)
