"""A unit's exact items go to the runner in one call, with the values and cache of one by one."""

import pytest

from benchmark.models import CachedCall, ModelEndpoint, Provider
from benchmark.rendering import render_prompt, spec_items
from benchmark.runners import get_runner, options
from benchmark.runners.options import option_distribution
from benchmark.services.execution import execute_unit
from benchmark.services.runs import queue_run
from benchmark.specs import spec_from_json
from tests.test_queue_recovery import FOUR
from tests.test_runs import load

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def endpoint(tiny_llama):
    return ModelEndpoint.objects.create(
        name="tiny", provider=Provider.HF, model=str(tiny_llama), revision="r1"
    )


def count_calls(monkeypatch) -> list[int]:
    """The number of items of each `option_distributions` call from now on."""
    calls = []
    real = options.option_distributions

    def counted(runner, items):
        calls.append(len(items))
        return real(runner, items)

    monkeypatch.setattr(options, "option_distributions", counted)
    return calls


def by_hand(tiny_llama, version) -> dict:
    """Each item's distribution from its own `option_distribution` call, in a fresh runner."""
    runner = get_runner("hf", model_path=str(tiny_llama))
    spec = spec_from_json(version.spec)
    items = spec_items(spec)
    return {
        i.key: option_distribution(
            runner, render_prompt(spec, [], i.key, items=items).text, [o.key for o in i.options]
        ).probs
        for i in items
    }


def test_one_call_per_unit_gives_the_item_by_item_distributions(
    endpoint, tiny_llama, tmp_path, monkeypatch
):
    version = load(tmp_path, FOUR, "four")
    expected = by_hand(tiny_llama, version)
    calls = count_calls(monkeypatch)
    run = queue_run(endpoint=endpoint, task_version=version, scoring_mode="exact", batch_size=4)
    assert execute_unit(run.units.get().pk) == "done"
    assert calls == [4]  # the four items in one runner call
    saved = {r.item_key: r for r in run.responses.all()}
    assert sorted(saved) == ["q1", "q2", "q3", "q4"]
    for key, probs in expected.items():
        assert saved[key].distribution == pytest.approx(probs, abs=1e-5)
        assert saved[key].cached is False
    assert CachedCall.objects.filter(endpoint=endpoint).count() == 4
    # A second run of the same items finds all four in the cache and calls nothing.
    again = queue_run(endpoint=endpoint, task_version=version, scoring_mode="exact", batch_size=4)
    assert execute_unit(again.units.get().pk) == "done"
    assert calls == [4]
    assert all(r.cached for r in again.responses.all())
    assert {r.item_key: r.distribution for r in again.responses.all()} == {
        k: r.distribution for k, r in saved.items()
    }


def test_if_the_call_for_the_unit_fails_the_items_go_one_by_one(
    endpoint, tiny_llama, tmp_path, monkeypatch
):
    version = load(tmp_path, FOUR, "four")
    expected = by_hand(tiny_llama, version)
    real = options.option_distributions

    def fails_for_several(runner, items):
        if len(items) > 1:
            raise RuntimeError("out of memory")
        return real(runner, items)

    monkeypatch.setattr(options, "option_distributions", fails_for_several)
    run = queue_run(endpoint=endpoint, task_version=version, scoring_mode="exact", batch_size=4)
    assert execute_unit(run.units.get().pk) == "done"
    assert run.responses.count() == 4
    for response in run.responses.all():
        assert response.distribution == pytest.approx(expected[response.item_key], abs=1e-5)


def test_predicted_individuals_are_scored_in_one_call_too(
    endpoint, tiny_llama, tmp_path, monkeypatch
):
    from benchmark.models import DatasetSource, HumanDataset, RunMode, Transcript

    version = load(tmp_path, FOUR, "four")
    dataset = HumanDataset.objects.create(
        slug="people", name="people", source=DatasetSource.BUNDLED, content_sha256="c" * 64
    )
    for i, age in enumerate((21, 67)):
        Transcript.objects.create(
            dataset=dataset,
            line=i + 1,
            participant=str(i),
            answers={"q1": 3, "q2": 1, "q3": 2, "q4": 2},
            profile={"age": age},
        )
    calls = count_calls(monkeypatch)
    run = queue_run(
        endpoint=endpoint,
        task_version=version,
        mode=RunMode.PREDICT_INDIVIDUAL,
        scoring_mode="exact",
        dataset=dataset,
        batch_size=100,
    )
    (unit,) = run.units.all()
    assert execute_unit(unit.pk) == "done"
    assert calls == [8]  # 2 people × 4 items in one runner call
    monkeypatch.undo()  # scoring alone below, uncounted
    runner = get_runner("hf", model_path=str(tiny_llama))
    for response in run.responses.all():
        opts = sorted(response.distribution)
        alone = option_distribution(runner, response.prompt, opts).probs
        assert response.distribution == pytest.approx(alone, abs=1e-5)
    assert run.responses.count() == 8
