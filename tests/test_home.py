"""The start page at / after `make run`: what runs here, where to go; studies only for staff."""

import pytest

from benchmark.models import ModelEndpoint, Provider
from benchmark.services.runs import queue_run
from participants.models import Study
from tests.test_runs import load
from tests.test_specs import GOOD

pytestmark = pytest.mark.django_db


@pytest.fixture
def study_and_run(tmp_path, tiny_llama):
    version = load(tmp_path, GOOD, "mini-q")
    study = Study.objects.create(
        task_version=version, title="Personality pilot", slug="pilot", consent_markdown="ok"
    )
    endpoint = ModelEndpoint.objects.create(
        name="tiny", provider=Provider.HF, model=str(tiny_llama)
    )
    run = queue_run(endpoint=endpoint, task_version=version)
    return study, run


@pytest.mark.embedded
def test_anonymous_visitors_see_the_server_and_no_study(client, study_and_run):
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/admin/"' in html and 'href="/api/schema/docs/"' in html
    assert "Tasks loaded</dt><dd>1<" in html
    assert (
        "Personality pilot" not in html
        and "/s/pilot/" not in html
        and "#" + str(study_and_run[1].pk) not in html
    )
    assert "Sign in" in html and "after signing in" in html  # the API docs need a login


@pytest.mark.embedded
def test_staff_see_open_studies_with_their_links_and_queued_runs(admin_client, study_and_run):
    _, run = study_and_run
    html = admin_client.get("/").content.decode()
    assert "Personality pilot" in html and "http://testserver/s/pilot/" in html
    assert f"#{run.pk}</a>" in html and "0 of 2" in html
    assert "embedded" in html or "scaled" in html
