"""Item 1: no endpoint makes a worker send a secret, or anything, to a host of its choosing."""

import json

import pytest
from django.test import Client, override_settings

from benchmark.models import ModelEndpoint, Provider, RunState
from benchmark.runners import get_runner
from benchmark.runners.base import SampleRequest
from benchmark.runners.http import NotAllowed, check_base_url, host_allowed
from benchmark.services.runs import queue_run
from tests.runners.servers import AnthropicServer
from tests.security.conftest import CANARY
from tests.test_runs import drain

pytestmark = pytest.mark.django_db

ENDPOINT_FORM = {
    "name": "probe",
    "provider": "openai",
    "model": "m",
    "revision": "",
    "settings": '{"base_url": "http://127.0.0.1:9"}',
    "api_key_env": "",
    "release_date": "",
    "price_input_per_mtok": "0",
    "price_output_per_mtok": "0",
}
ADD = "/admin/benchmark/modelendpoint/add/"


def staff_client(make_user, *perms):
    client = Client()
    client.force_login(make_user("researcher", staff=True, perms=perms))
    return client


def test_add_permissions_alone_do_not_allow_creating_an_endpoint(make_user):
    client = staff_client(
        make_user,
        "benchmark.add_modelendpoint",
        "benchmark.add_modelrun",
        "benchmark.view_modelrun",
    )
    assert client.get(ADD).status_code == 403
    sent = client.post(ADD, {**ENDPOINT_FORM, "api_key_env": "SECRET_KEY"})
    assert sent.status_code == 403
    assert not ModelEndpoint.objects.exists()


def test_the_explicit_permission_allows_endpoints_on_the_allow_lists(make_user):
    client = staff_client(make_user, "benchmark.add_modelendpoint", "benchmark.configure_endpoint")
    made = client.post(ADD, {**ENDPOINT_FORM, "api_key_env": "GEPPETTO_KEY_LAB"})
    assert made.status_code == 302
    endpoint = ModelEndpoint.objects.get()
    assert (endpoint.api_key_env, endpoint.settings) == (
        "GEPPETTO_KEY_LAB",
        {"base_url": "http://127.0.0.1:9"},
    )


@pytest.mark.parametrize("variable", ["SECRET_KEY", "DATABASE_URL", "GEPPETTO_ADMIN_PASSWORD"])
def test_a_key_variable_off_the_allow_list_is_refused_with_the_field(admin_client, variable):
    page = admin_client.post(ADD, {**ENDPOINT_FORM, "api_key_env": variable})
    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert list(errors) == ["api_key_env"]
    assert f"the key variable '{variable}' is not allowed" in errors["api_key_env"][0]
    assert "GEPPETTO_KEY_" in errors["api_key_env"][0]
    assert not ModelEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://attacker.example:8080",
        "http://169.254.169.254/latest/meta-data",
        "http://api.openai.com@attacker.example",
        "http://10.0.0.5:6379",
        "file:///etc/passwd",
        "ftp://127.0.0.1",
        "http://api.openai.com.attacker.example",
    ],
)
def test_a_base_url_host_off_the_allow_list_is_refused(admin_client, url):
    settings = json.dumps({"base_url": url})
    page = admin_client.post(ADD, {**ENDPOINT_FORM, "settings": settings})
    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert list(errors) == ["settings"] and errors["settings"][0].startswith("base_url: ")
    assert not ModelEndpoint.objects.exists()


def test_host_matching_by_name_domain_and_network():
    allowed = ["api.openai.com", ".lab.example.org", "10.1.0.0/16", "::1"]
    assert host_allowed("API.OpenAI.com", allowed)
    assert host_allowed("gpu3.lab.example.org", allowed) and host_allowed(
        "lab.example.org", allowed
    )
    assert not host_allowed("evillab.example.org", allowed)
    assert host_allowed("10.1.200.3", allowed) and not host_allowed("10.2.0.1", allowed)
    assert host_allowed("[::1]", allowed) and not host_allowed("::2", allowed)
    with override_settings(ENDPOINT_HOSTS=allowed):
        check_base_url("https://gpu3.lab.example.org:8443/v1")
        with pytest.raises(NotAllowed, match=r"'127\.0\.0\.1' is not allowed"):
            check_base_url("http://127.0.0.1:8000")


def stored_endpoint(server, **fields):
    """An endpoint row as an older release could have stored it (no validation)."""
    return ModelEndpoint.objects.create(
        name="stored",
        provider=Provider.ANTHROPIC,
        model="m",
        settings={"base_url": server.url, "max_retries": 0},
        **fields,
    )


def test_a_worker_never_sends_a_variable_off_the_allow_list(mini_version, monkeypatch):
    monkeypatch.setenv("GEPPETTO_CANARY_DB", CANARY)
    with AnthropicServer(reply="2") as server:
        run = queue_run(
            endpoint=stored_endpoint(server, api_key_env="GEPPETTO_CANARY_DB"),
            task_version=mini_version,
        )
        drain(run)
    assert server.calls == 0
    assert run.state == RunState.FAILED
    assert "'GEPPETTO_CANARY_DB' is not allowed" in run.error and CANARY not in run.error


@override_settings(ENDPOINT_HOSTS=["api.anthropic.com"])
def test_a_worker_sends_nothing_to_a_host_off_the_allow_list(mini_version, monkeypatch):
    monkeypatch.setenv("GEPPETTO_KEY_LAB", CANARY)
    with AnthropicServer(reply="2") as server:
        run = queue_run(
            endpoint=stored_endpoint(server, api_key_env="GEPPETTO_KEY_LAB"),
            task_version=mini_version,
        )
        drain(run)
    assert server.calls == 0
    assert run.state == RunState.FAILED
    assert "the host '127.0.0.1' is not allowed" in run.error


def test_an_allowed_endpoint_still_gets_its_key(mini_version, monkeypatch):
    monkeypatch.setenv("GEPPETTO_KEY_LAB", "sk-lab")
    with AnthropicServer(reply="2", api_key="sk-lab") as server:
        run = queue_run(
            endpoint=stored_endpoint(server, api_key_env="GEPPETTO_KEY_LAB"),
            task_version=mini_version,
        )
        drain(run)
    assert run.state == RunState.COMPLETED
    assert {h["x-api-key"] for h in server.seen_headers} == {"sk-lab"}


def test_the_runner_refuses_a_redirect_to_another_host(monkeypatch):
    monkeypatch.setenv("GEPPETTO_KEY_LAB", CANARY)
    with AnthropicServer(reply="2") as server:
        server.faults.append((307, {"Location": "http://attacker.example/steal"}, "{}"))
        runner = get_runner(
            "anthropic",
            base_url=server.url,
            model="m",
            api_key_env="GEPPETTO_KEY_LAB",
            max_retries=0,
        )
        with pytest.raises(Exception, match="HTTP 307"):
            runner.sample([SampleRequest(prompt="Say 2", max_tokens=1)])
        runner.close()
    assert server.calls == 1
