"""The run list and the run page in a real browser, at a laptop's 1280 px."""

import pytest
from playwright.sync_api import expect

from benchmark.models import ModelEndpoint, Provider, RunState, UnitState
from benchmark.services.runs import queue_run
from benchmark.services.tasks import load_tasks
from tests.browser.conftest import QUESTIONNAIRE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_run_list_fits_1280_px_and_the_run_page_cancels(
    context, live_server, shot, django_user_model, tmp_path
):
    django_user_model.objects.create_superuser("lab", "lab@example.org", "pw-for-tests-3")
    path = tmp_path / "web-q.yaml"
    path.write_text(QUESTIONNAIRE.replace("slug: web-q", "slug: ipip-big5-50-long-task-name"))
    version = load_tasks([path])[0].version
    endpoint = ModelEndpoint.objects.create(
        name="smollm2-135m-instruct-float32",
        provider=Provider.HF,
        model="/var/lib/geppetto/models/SmolLM2-135M-Instruct",
        revision="main",
    )
    runs = [queue_run(endpoint=endpoint, task_version=version, batch_size=2) for _ in range(3)]
    runs[0].units.filter(index=0).update(state=UnitState.FAILED, last_error="boom")
    runs[0].units.exclude(index=0).update(state=UnitState.DONE)
    type(runs[0]).objects.filter(pk=runs[0].pk).update(state=RunState.COMPLETED)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/benchmark/modelrun/")
    page.fill("#id_username", "lab")
    page.fill("#id_password", "pw-for-tests-3")
    page.click("input[type=submit]")
    expect(page.locator("#result_list")).to_be_visible()
    shot(page, "admin-run-list-1280")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    # The table scrolls inside its box: every column must be inside the box, not past it.
    visible = page.locator("#changelist .results").bounding_box()
    right = min(visible["x"] + visible["width"], 1280)
    assert (
        page.evaluate("document.querySelector('#changelist .results').scrollWidth")
        <= (visible["width"])
    )
    for column in ("status", "progress", "cost", "created_short"):
        cells = page.locator(f"#result_list td.field-{column}")
        assert cells.count() == 3
        for i in range(3):
            box = cells.nth(i).bounding_box()
            assert box["x"] + box["width"] <= right, (column, box, visible)
    expect(page.locator("#result_list")).to_contain_text("Completed with 1 failed unit")
    # The run page: cancel with its own button.
    run = runs[1]
    page.goto(f"{live_server.url}/admin/benchmark/modelrun/{run.pk}/change/")
    expect(page.locator("#run-controls button")).to_have_text(["Cancel the run"])
    page.click("#run-controls button[name=cancel]")
    expect(page.locator(".messagelist")).to_contain_text(f"Cancelled run {run.pk}.")
    expect(page.locator("#run-controls button")).to_have_text(["Resume the run"])
    shot(page, "admin-run-page")
    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
