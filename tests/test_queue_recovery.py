"""Recovery of the run queue in one process: leases, attempts, reconcile, resume and retry,
progress after a resume, and the run page's controls. Real tiny model, real database;
the worker processes of the same story are in tests/test_queue_workers.py."""

import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connections
from django.test import Client
from django.utils import timezone

from benchmark.models import (
    ModelEndpoint,
    ModelResponse,
    ModelRun,
    Provider,
    RunState,
    ScoringMode,
    UnitState,
    WorkUnit,
)
from benchmark.services import execution, leases
from benchmark.services.execution import execute_unit
from benchmark.services.progress import run_progress, run_status, time_left_text
from benchmark.services.runs import (
    cancel_run,
    queue_run,
    reconcile_if_due,
    reconcile_runs,
    resume_run,
    retry_failed,
)
from tests.test_runs import drain, load
from tests.test_specs import GOOD

pytestmark = pytest.mark.django_db

FOUR = GOOD.replace(
    "  - {key: q2, text: I am quiet., scale: X, reverse: true}\n",
    "  - {key: q2, text: I am quiet., scale: X, reverse: true}\n"
    "  - {key: q3, text: I plan ahead., scale: X}\n"
    "  - {key: q4, text: I worry., scale: X}\n",
)


@pytest.fixture
def hf_endpoint(tiny_llama):
    return ModelEndpoint.objects.create(
        name="tiny", provider=Provider.HF, model=str(tiny_llama), revision="r1"
    )


@pytest.fixture
def four(tmp_path):
    return load(tmp_path, FOUR, "four")


@pytest.fixture
def api_server(tiny_llama):
    from tests.runners.servers import OpenAIServer

    with OpenAIServer(tiny_llama) as server:
        yield server


def expire(unit: WorkUnit) -> None:
    """What a dead worker leaves: a running unit whose lease ran out."""
    WorkUnit.objects.filter(pk=unit.pk).update(lease_until=timezone.now() - timedelta(seconds=1))


@pytest.mark.embedded
def test_a_worker_that_died_does_not_use_up_the_attempts(hf_endpoint, four):
    run = queue_run(endpoint=hf_endpoint, task_version=four, batch_size=4)
    unit = run.units.get()
    for _ in range(5):  # five workers take the unit and die before answering anything
        assert leases.claim(unit.pk) is not None
        expire(unit)
    assert execute_unit(unit.pk) == "done"
    unit.refresh_from_db()
    assert (unit.state, unit.attempts, unit.lost_leases, unit.last_error) == ("done", 0, 5, "")
    run.refresh_from_db()
    assert (run.state, run.error) == (RunState.COMPLETED, "")
    assert run.responses.count() == 4


def test_a_unit_whose_workers_keep_dying_fails_with_a_message(hf_endpoint, four):
    run = queue_run(endpoint=hf_endpoint, task_version=four, batch_size=2)
    doomed, fine = run.units.order_by("index")
    for _ in range(leases.MAX_LOST_LEASES):
        assert leases.claim(doomed.pk) is not None
        expire(doomed)
    assert execute_unit(fine.pk) == "done"
    assert execute_unit(doomed.pk) == "skipped"  # the tenth lost lease fails it
    doomed.refresh_from_db()
    assert doomed.state == UnitState.FAILED
    assert doomed.last_error == (
        "its worker stopped 10 times before finishing it (killed, or out of memory?)"
    )
    run.refresh_from_db()
    assert run.state == RunState.COMPLETED
    assert run.error == f"1 unit(s) failed: unit 0: {doomed.last_error}"
    assert run_status(run) == "Completed with 1 failed unit"


def test_an_error_without_a_message_still_says_what_failed(hf_endpoint, four, monkeypatch):
    run = queue_run(endpoint=hf_endpoint, task_version=four, batch_size=4)

    def silent(ctx):
        raise RuntimeError

    monkeypatch.setitem(execution.EXECUTORS, "participant", silent)
    assert [execute_unit(run.units.get().pk) for _ in range(3)] == ["retry", "retry", "failed"]
    unit = run.units.get()
    assert (unit.state, unit.attempts, unit.last_error) == ("failed", 3, "RuntimeError")
    run.refresh_from_db()
    assert run.error == "1 unit(s) failed: unit 0: RuntimeError"


@pytest.mark.embedded
def test_a_worker_that_lost_its_lease_stops_writing_and_does_not_end_the_unit(
    hf_endpoint, four, monkeypatch
):
    run = queue_run(endpoint=hf_endpoint, task_version=four, batch_size=4)
    unit = run.units.get()
    real = execution.exact_distribution
    calls = []

    def stalls_then_loses(ctx, prompt, options, ready=None):
        calls.append(prompt)
        if len(calls) == 2:
            # This worker stalled past its lease after one answer; another one took the unit.
            expire(unit)
            assert leases.claim(unit.pk) is not None
        return real(ctx, prompt, options, ready)

    monkeypatch.setattr(execution, "exact_distribution", stalls_then_loses)
    assert execute_unit(unit.pk) == "lost"
    assert len(calls) == 2  # it stopped at its first write after losing the lease
    unit.refresh_from_db()
    assert unit.state == UnitState.RUNNING  # not done: the new holder has work left
    assert (unit.attempts, unit.lost_leases) == (0, 1)
    assert run.responses.count() == 1  # the answer of the lost lease was not written
    # The new holder's worker dies too; the next one finishes the unit exactly once.
    expire(unit)
    monkeypatch.setattr(execution, "exact_distribution", real)
    assert execute_unit(unit.pk) == "done"
    keys = list(run.responses.values_list("item_key", flat=True))
    assert sorted(keys) == ["q1", "q2", "q3", "q4"]


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_the_lease_is_kept_while_the_model_loads(hf_endpoint, four, settings, monkeypatch):
    settings.UNIT_LEASE_SECONDS = 1
    execution.close_runners()
    real_build = execution.build_runner

    def slow_load(endpoint):
        time.sleep(2.5)  # 2.5 leases
        return real_build(endpoint)

    monkeypatch.setattr(execution, "build_runner", slow_load)
    run = queue_run(endpoint=hf_endpoint, task_version=four, batch_size=4)
    unit = run.units.get()
    first: list[str] = []

    def work():
        try:
            first.append(execute_unit(unit.pk))
        finally:
            connections.close_all()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        time.sleep(1.8)  # the first worker is loading the model, past its first lease
        assert execute_unit(unit.pk) == "skipped"  # a second message finds the unit held
    finally:
        worker.join(30)
        execution.close_runners()
    assert first == ["done"]
    unit.refresh_from_db()
    assert (unit.state, unit.attempts, unit.lost_leases) == (UnitState.DONE, 0, 0)
    assert run.responses.count() == 4


def test_resume_keeps_the_first_start_and_the_rate_counts_from_the_resume(hf_endpoint, four):
    run = queue_run(endpoint=hf_endpoint, task_version=four, batch_size=1)
    first, *rest = run.units.order_by("index")
    assert execute_unit(first.pk) == "done"
    cancel_run(run=run)
    # The first stretch was an hour ago.
    long_ago = timezone.now() - timedelta(hours=1)
    ModelRun.objects.filter(pk=run.pk).update(started=long_ago)
    ModelResponse.objects.filter(run=run).update(created=long_ago)
    resume_run(run=run)
    for unit in rest:
        assert execute_unit(unit.pk) == "done"
    run.refresh_from_db()
    assert run.started == long_ago
    assert run.resumed > long_ago + timedelta(minutes=59)
    # Rate: 3 responses since the resume, counted from the first of them to the end.
    stretch = list(
        run.responses.filter(created__gte=run.resumed)
        .order_by("created")
        .values_list("created", flat=True)
    )
    assert len(stretch) == 3
    p = run_progress(run)
    minutes = (run.finished - stretch[0]).total_seconds() / 60
    assert p.rate_per_min == pytest.approx(2 / minutes)
    assert p.rate_per_min > 10  # not 4 responses over an hour and more


def test_the_time_left_comes_from_the_stretch_and_not_from_the_model_loading(
    hf_endpoint, four, monkeypatch
):
    from benchmark.services import progress

    run = queue_run(endpoint=hf_endpoint, task_version=four, batch_size=1)
    units = list(run.units.order_by("index"))
    now = timezone.now()
    # The clock stands still, so a slow machine does not stretch the measured interval.
    monkeypatch.setattr(progress.timezone, "now", lambda: now)
    # The model took 40 s to load; then two answers 1 s apart.
    ModelRun.objects.filter(pk=run.pk).update(
        state=RunState.RUNNING, started=now - timedelta(seconds=42)
    )
    run.refresh_from_db()
    p = run_progress(run)
    assert p.starting and p.eta_seconds is None
    assert time_left_text(run, p) == "loading the model"
    for i, unit in enumerate(units[:2]):
        ModelResponse.objects.create(
            run=run, unit=unit, item_key=f"q{i + 1}", scoring_mode=ScoringMode.EXACT
        )
    ModelResponse.objects.filter(run=run, item_key="q1").update(created=now - timedelta(seconds=2))
    ModelResponse.objects.filter(run=run, item_key="q2").update(created=now - timedelta(seconds=1))
    run.refresh_from_db()
    p = run_progress(run)
    assert not p.starting
    # 1 response per ~2 s since the first answer; 2 left → ~4 s, not 2 × 42 s.
    assert p.rate_per_min == pytest.approx(30, rel=0.1)
    assert p.eta_seconds == pytest.approx(4, rel=0.1)
    assert time_left_text(run, p) in {"4 s", "5 s"}


def test_retry_after_an_unreachable_endpoint_finishes_the_run(api_server, four):
    endpoint = ModelEndpoint.objects.create(
        name="later",
        provider=Provider.OPENAI,
        model="tiny",
        settings={"base_url": "http://127.0.0.1:9", "max_retries": 0},
    )
    run = queue_run(
        endpoint=endpoint, task_version=four, scoring_mode=ScoringMode.SAMPLED, batch_size=1
    )
    drain(run)
    assert run.state == RunState.FAILED
    assert "cannot be reached" in run.error
    assert set(run.units.values_list("state", flat=True)) == {UnitState.CANCELLED}
    endpoint.settings = {"base_url": api_server.url, "max_retries": 0}
    endpoint.save()
    retry_failed(run=run)
    assert set(run.units.values_list("state", flat=True)) == {UnitState.PENDING}
    drain(run)
    assert (run.state, run.error) == (RunState.COMPLETED, "")
    assert sorted(run.responses.values_list("item_key", flat=True)) == ["q1", "q2", "q3", "q4"]


def test_retry_with_nothing_to_retry_says_so(hf_endpoint, four):
    from benchmark.services.runs import RunError

    run = queue_run(endpoint=hf_endpoint, task_version=four, batch_size=4)
    with pytest.raises(RunError, match="has no failed units to retry"):
        retry_failed(run=run)


@pytest.mark.embedded
def test_reconcile_resends_stale_units_once_per_lease_and_one_process_per_period(
    hf_endpoint, four, settings, monkeypatch
):
    from benchmark import actors

    sent = []
    monkeypatch.setattr(
        actors, "send_unit", lambda queue, unit_id, delay_ms=None: sent.append(unit_id)
    )
    run = queue_run(endpoint=hf_endpoint, task_version=four, batch_size=1)
    fresh, waiting, dead, held = run.units.order_by("index")
    long_ago = timezone.now() - timedelta(seconds=settings.UNIT_LEASE_SECONDS + 5)
    WorkUnit.objects.filter(pk__in=[waiting.pk, dead.pk, held.pk]).update(updated=long_ago)
    WorkUnit.objects.filter(pk=dead.pk).update(state=UnitState.RUNNING, lease_until=long_ago)
    WorkUnit.objects.filter(pk=held.pk).update(
        state=UnitState.RUNNING, lease_until=timezone.now() + timedelta(minutes=5)
    )
    with django_capture_on_commit():
        assert reconcile_if_due(every=timedelta(seconds=60)) == 2
        assert reconcile_if_due(every=timedelta(seconds=60)) is None  # another process's turn
        later = timezone.now() + timedelta(seconds=61)
        # Due again, but the units sent a minute ago are not sent again within a lease.
        assert reconcile_if_due(every=timedelta(seconds=60), now=later) == 0
    assert sorted(sent) == sorted([waiting.pk, dead.pk])
    assert WorkUnit.objects.get(pk=dead.pk).state == UnitState.RUNNING  # its claim counts it
    # Without the age condition (a process starting after an in-memory broker lost its
    # messages) every pending unit is sent.
    sent.clear()
    with django_capture_on_commit():
        assert reconcile_runs() == 3
    assert fresh.pk in sent and held.pk not in sent


def django_capture_on_commit():
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


# --- the run page -------------------------------------------------------------------------


def run_page(client, run):
    return client.get(f"/admin/benchmark/modelrun/{run.pk}/change/").content.decode()


def test_the_run_page_has_cancel_resume_and_retry_buttons(admin_client, hf_endpoint, four):
    run = queue_run(endpoint=hf_endpoint, task_version=four, batch_size=1)
    page = run_page(admin_client, run)
    assert f'formaction="/admin/benchmark/modelrun/{run.pk}/control/cancel/"' in page
    assert "Resume the run" not in page and "Retry failed units" not in page
    assert "loading the model" in page
    response = admin_client.post(f"/admin/benchmark/modelrun/{run.pk}/control/cancel/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    assert set(run.units.values_list("state", flat=True)) == {UnitState.CANCELLED}
    page = run_page(admin_client, run)
    assert "Cancel the run" not in page and "Resume the run" in page
    admin_client.post(f"/admin/benchmark/modelrun/{run.pk}/control/resume/")
    run.refresh_from_db()
    assert run.state == RunState.QUEUED
    drain(run)
    run.units.filter(index=0).update(state=UnitState.FAILED, last_error="boom")
    run.state = RunState.COMPLETED
    run.save()
    page = run_page(admin_client, run)
    assert "Completed with 1 failed unit" in page
    assert "Retry failed units" in page
    response = admin_client.post(f"/admin/benchmark/modelrun/{run.pk}/control/retry/", follow=True)
    assert "Retried the failed units of run" in response.content.decode()
    assert "(1 unit queued again)" in response.content.decode()
    run.refresh_from_db()
    assert run.state == RunState.QUEUED
    assert run.units.get(index=0).state == UnitState.PENDING
    listing = admin_client.get("/admin/benchmark/modelrun/").content.decode()
    assert "Queued" in listing


def test_run_controls_need_post_csrf_and_the_add_permission(hf_endpoint, four, superuser):
    run = queue_run(endpoint=hf_endpoint, task_version=four, batch_size=1)
    url = f"/admin/benchmark/modelrun/{run.pk}/control/cancel/"
    viewer = User.objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_modelrun"))
    client = Client()
    client.force_login(viewer)
    assert "Cancel the run" not in run_page(client, run)
    assert client.post(url).status_code == 403
    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(superuser)
    assert csrf.post(url).status_code == 403  # no CSRF token
    assert csrf.get(url).status_code == 405
    run.refresh_from_db()
    assert run.state == RunState.QUEUED
    page = csrf.get(f"/admin/benchmark/modelrun/{run.pk}/change/")
    token = page.cookies["csrftoken"].value
    assert csrf.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    run.refresh_from_db()
    assert run.state == RunState.CANCELLED


def test_the_api_says_completed_with_failed_units(admin_client, hf_endpoint, four):
    run = queue_run(endpoint=hf_endpoint, task_version=four, batch_size=2)
    drain(run)
    assert admin_client.get(f"/api/v1/runs/{run.pk}/").json()["status"] == "Completed"
    run.units.filter(index=1).update(state=UnitState.FAILED)
    body = admin_client.get(f"/api/v1/runs/{run.pk}/").json()
    assert (body["state"], body["status"]) == ("completed", "Completed with 1 failed unit")
    assert body["progress"]["starting"] is False
