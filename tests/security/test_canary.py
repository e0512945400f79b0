"""A canary secret in the environment never shows up: not in a log line, a page, an export,
an error, or a request to a host off the allow-list."""

import json
import logging

import pytest
from django.test import override_settings

from benchmark.models import ModelEndpoint, Provider, RunState
from benchmark.services.runs import queue_run
from tests.runners.servers import AnthropicServer
from tests.security.conftest import CANARY
from tests.test_runs import drain

pytestmark = pytest.mark.django_db


def endpoint(name, server, key_env):
    return ModelEndpoint.objects.create(
        name=name,
        provider=Provider.ANTHROPIC,
        model="m",
        api_key_env=key_env,
        settings={"base_url": server.url, "max_retries": 0},
    )


def everything_seen(server, admin_client, study_id) -> str:
    """Every request the server got, and every page and export a researcher can open."""
    seen = [json.dumps(server.seen_headers), json.dumps(server.payloads)]
    pages = [
        "/admin/benchmark/modelendpoint/",
        "/admin/benchmark/modelrun/",
        "/admin/benchmark/modelresponse/",
        "/api/v1/endpoints/",
        "/api/v1/runs/",
        f"/admin/participants/study/{study_id}/export/json/",
        f"/admin/participants/study/{study_id}/export/psych201/",
    ]
    for e in ModelEndpoint.objects.all():
        pages.append(f"/admin/benchmark/modelendpoint/{e.pk}/change/")
        for run in e.runs.all():
            pages += [f"/admin/benchmark/modelrun/{run.pk}/change/", f"/api/v1/runs/{run.pk}/"]
    for url in pages:
        page = admin_client.get(url)
        assert page.status_code == 200, url
        seen.append(page.content.decode())
    return "\n".join(seen)


def test_the_canary_never_leaves_or_shows(
    mini_version, make_study, admin_client, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    # The canary sits in an allowed key variable and in variables a worker must never send.
    for variable in ("GEPPETTO_KEY_LAB", "GEPPETTO_DB_PASSWORD", "SECRET_KEY_BACKUP"):
        monkeypatch.setenv(variable, CANARY)
    study = make_study(mini_version)
    with AnthropicServer(reply="2") as server:
        runs = {
            # A variable off the allow-list, to an allowed host: nothing is sent.
            "off-list variable": queue_run(
                endpoint=endpoint("e1", server, "GEPPETTO_DB_PASSWORD"), task_version=mini_version
            ),
            "other off-list variable": queue_run(
                endpoint=endpoint("e2", server, "SECRET_KEY_BACKUP"), task_version=mini_version
            ),
        }
        for run in runs.values():
            drain(run)
        assert server.calls == 0
        # An allowed variable to a host off the list: nothing is sent.
        with override_settings(ENDPOINT_HOSTS=["api.anthropic.com"]):
            runs["off-list host"] = queue_run(
                endpoint=endpoint("e3", server, "GEPPETTO_KEY_LAB"), task_version=mini_version
            )
            drain(runs["off-list host"])
        assert server.calls == 0
        # An allowed endpoint whose server echoes the key in its refusal: the key is sent
        # (that is its job) but appears in no error, page or log.
        echo = {"error": {"message": f"invalid x-api-key {CANARY}"}}
        server.faults.append((401, {}, json.dumps(echo)))
        runs["echoing server"] = queue_run(
            endpoint=endpoint("e4", server, "GEPPETTO_KEY_LAB"), task_version=mini_version
        )
        drain(runs["echoing server"])
        assert server.calls == 1 and server.seen_headers[0]["x-api-key"] == CANARY
        server.seen_headers.clear()  # the one legitimate request
        seen = everything_seen(server, admin_client, study.pk)
    for name, run in runs.items():
        run.refresh_from_db()
        assert run.state == RunState.FAILED, name
        assert CANARY not in run.error, name
    assert "invalid x-api-key [key]" in runs["echoing server"].error
    assert "is not allowed" in runs["off-list host"].error
    assert CANARY not in seen
    assert CANARY not in caplog.text
