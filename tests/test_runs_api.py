"""Queueing runs from the admin and the API; permissions; progress."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token

from benchmark.models import ModelEndpoint, ModelRun, Provider, RunState, UnitState
from benchmark.services.tasks import load_tasks
from tests.test_specs import GOOD

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(tmp_path):
    path = tmp_path / "mini-q.yaml"
    path.write_text(GOOD)
    return load_tasks([path])[0].version


@pytest.fixture
def api_endpoint():
    return ModelEndpoint.objects.create(
        name="api-model",
        provider=Provider.OPENAI,
        model="m",
        # A server without echo log-probabilities: sampled scoring only.
        settings={"base_url": "http://127.0.0.1:9", "capabilities": ["sample", "chat"]},
        api_key_env="GEPPETTO_KEY_CANARY",
        price_input_per_mtok=Decimal("1"),
        price_output_per_mtok=Decimal("4"),
    )


def test_admin_estimates_then_queues_a_run(admin_client, version, api_endpoint):
    form = {
        "endpoint": api_endpoint.pk,
        "task_version": version.pk,
        "mode": "participant",
        "scoring_mode": "sampled",
        "samples": 5,
        "prompt_variant": "neutral",
        "seed": 0,
        "batch_size": 1,
    }
    page = admin_client.post("/admin/benchmark/modelrun/queue/", {**form, "estimate": "1"})
    assert page.status_code == 200
    assert page.context["plan"].calls == 10
    assert b"estimated cost" in page.content
    assert ModelRun.objects.count() == 0

    done = admin_client.post("/admin/benchmark/modelrun/queue/", {**form, "queue": "1"})
    run = ModelRun.objects.get()
    assert done.status_code == 302
    assert done["Location"] == f"/admin/benchmark/modelrun/{run.pk}/change/"
    assert (run.samples_per_item, run.scoring_mode, run.units.count()) == (5, "sampled", 2)
    detail = admin_client.get(done["Location"])
    assert b"0 of 10" in detail.content  # progress panel

    refused = admin_client.post(
        "/admin/benchmark/modelrun/queue/", {**form, "scoring_mode": "exact", "queue": "1"}
    )
    assert refused.status_code == 200
    assert "gives no log-probabilities" in refused.content.decode()
    assert ModelRun.objects.count() == 1


def test_admin_actions_cancel_and_resume(admin_client, version, api_endpoint):
    from benchmark.services.runs import queue_run

    run = queue_run(endpoint=api_endpoint, task_version=version, batch_size=1)
    admin_client.post(
        "/admin/benchmark/modelrun/", {"action": "cancel_runs", "_selected_action": [run.pk]}
    )
    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    assert set(run.units.values_list("state", flat=True)) == {UnitState.CANCELLED}
    admin_client.post(
        "/admin/benchmark/modelrun/", {"action": "resume_runs", "_selected_action": [run.pk]}
    )
    run.refresh_from_db()
    assert run.state == RunState.QUEUED
    assert set(run.units.values_list("state", flat=True)) == {UnitState.PENDING}


def test_api_queues_reports_progress_and_cancels(client, version, api_endpoint):
    user = User.objects.create_user("researcher", password="pw-12345678")
    for codename in ("view_modelrun", "add_modelrun", "view_modelendpoint"):
        user.user_permissions.add(
            Permission.objects.get(codename=codename, content_type__app_label="benchmark")
        )
    token = Token.objects.create(user=user)
    auth = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    body = {
        "endpoint": "api-model",
        "task_version": version.pk,
        "samples": 3,
        "scoring_mode": "sampled",
    }

    estimate = client.post(
        "/api/v1/runs/", {**body, "estimate_only": True}, **auth, content_type="application/json"
    )
    assert estimate.status_code == 200
    assert estimate.json()["estimate"]["calls"] == 6
    assert ModelRun.objects.count() == 0

    created = client.post("/api/v1/runs/", body, content_type="application/json", **auth)
    assert created.status_code == 201
    data = created.json()
    assert data["state"] == "queued"
    assert data["progress"]["total"] == 6
    assert data["progress"]["done"] == 0
    run_id = data["id"]

    got = client.get(f"/api/v1/runs/{run_id}/", **auth).json()
    assert (got["endpoint"], got["task"], got["samples_per_item"]) == ("api-model", "mini-q", 3)

    cancelled = client.post(f"/api/v1/runs/{run_id}/cancel/", **auth)
    assert cancelled.json()["state"] == "cancelled"

    bad = client.post(
        "/api/v1/runs/", {**body, "scoring_mode": "exact"}, content_type="application/json", **auth
    )
    assert bad.status_code == 400
    assert "gives no log-probabilities" in bad.json()["detail"]

    endpoints = client.get("/api/v1/endpoints/", **auth).json()
    assert endpoints["results"][0]["api_key_env"] == "GEPPETTO_KEY_CANARY"


def test_api_runs_need_permissions(client, version, api_endpoint):
    assert client.get("/api/v1/runs/").status_code in (401, 403)
    reader = User.objects.create_user("reader", password="pw-12345678")
    reader.user_permissions.add(
        Permission.objects.get(codename="view_modelrun", content_type__app_label="benchmark")
    )
    client.force_login(reader)
    assert client.get("/api/v1/runs/").status_code == 200
    denied = client.post(
        "/api/v1/runs/",
        {"endpoint": "api-model", "task_version": version.pk},
        content_type="application/json",
    )
    assert denied.status_code == 403
    assert ModelRun.objects.count() == 0
