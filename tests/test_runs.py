"""Model runs through the services: planning, exact and sampled scoring, sequential play,
likelihood, cache, budget, cancel, retry, reconcile. Real tiny model, real database."""

import math
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from benchmark.models import (
    CachedCall,
    ModelEndpoint,
    ModelResponse,
    Provider,
    RunMode,
    RunState,
    ScoringMode,
    UnitState,
)
from benchmark.rendering import render_profile
from benchmark.runners import get_runner
from benchmark.runners.base import ScoreRequest
from benchmark.services.execution import execute_unit
from benchmark.services.progress import run_progress
from benchmark.services.runs import (
    RunError,
    cancel_run,
    estimate_cost,
    queue_run,
    reconcile_runs,
    resume_run,
    retry_failed,
)
from benchmark.services.tasks import load_tasks
from tests.test_rendering import BANDIT
from tests.test_specs import GOOD

pytestmark = pytest.mark.django_db


def drain(run, rounds: int = 4) -> None:
    """Execute every unit of a run in this process, retries included."""
    for _ in range(rounds):
        for unit_id in run.units.exclude(state__in=["done", "failed", "cancelled"]).values_list(
            "pk", flat=True
        ):
            execute_unit(unit_id)
    run.refresh_from_db()


@pytest.fixture
def hf_endpoint(tiny_llama):
    return ModelEndpoint.objects.create(
        name="tiny", provider=Provider.HF, model=str(tiny_llama), revision="r1"
    )


def load(tmp_path: Path, text: str, name: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    (result,) = load_tasks([path])
    return result.version


@pytest.fixture
def questionnaire(tmp_path):
    return load(tmp_path, GOOD, "mini-q")


@pytest.fixture
def bandit(tmp_path):
    return load(tmp_path, BANDIT, "mini-bandit")


def test_exact_participant_run_gives_one_distribution_per_item(hf_endpoint, questionnaire):
    run = queue_run(endpoint=hf_endpoint, task_version=questionnaire, batch_size=1)
    assert run.scoring_mode == ScoringMode.EXACT
    assert run.units.count() == 2
    drain(run)
    assert run.state == RunState.COMPLETED
    responses = list(run.responses.order_by("item_key"))
    assert [r.item_key for r in responses] == ["q1", "q2"]
    for r in responses:
        assert set(r.distribution) == {"1", "2", "3"}
        assert math.isclose(sum(r.distribution.values()), 1.0, rel_tol=1e-9)
        assert 0.0 <= r.mass_outside <= 1.0
        assert r.answer == max(r.distribution, key=r.distribution.get)
        assert r.prompt.endswith("<<")
        # Renormalised probabilities are the softmax of the raw option log-probabilities.
        logps = r.details["logprobs"]
        total = sum(math.exp(v) for v in logps.values())
        for key, p in r.distribution.items():
            assert math.isclose(p, math.exp(logps[key]) / total, rel_tol=1e-6)
    p = run_progress(run)
    assert (p.done, p.total, p.units_done, p.units_failed) == (2, 2, 2, 0)
    # The definition of an exact distribution is on the run and in its prompt hash.
    assert run.params["exact_definition"].startswith("P(option tokens")
    assert {r.details["continuation"] for r in responses} == {"option"}  # 1-3: prefix-free
    sampled = queue_run(
        endpoint=hf_endpoint, task_version=questionnaire, scoring_mode=ScoringMode.SAMPLED
    )
    assert sampled.prompt_hash != run.prompt_hash and "exact_definition" not in sampled.params


@pytest.fixture
def flat_model(tmp_path):
    """The tiny model with an all-zero output layer: every token equally likely."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.tiny_model import build_tiny_llama

    folder = build_tiny_llama(tmp_path / "tiny")
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    with torch.no_grad():
        model.lm_head.weight.zero_()
    flat = tmp_path / "flat"
    model.save_pretrained(flat)
    AutoTokenizer.from_pretrained(folder, local_files_only=True).save_pretrained(flat)
    return flat


def test_a_model_that_gives_flat_distributions_fails_the_run(flat_model, questionnaire):
    from benchmark.runners.base import ModelCheckError

    with pytest.raises(ModelCheckError, match="same log-probability"):
        get_runner("hf", model_path=str(flat_model))
    endpoint = ModelEndpoint.objects.create(
        name="flat", provider=Provider.HF, model=str(flat_model)
    )
    run = queue_run(endpoint=endpoint, task_version=questionnaire)
    drain(run)
    assert run.state == RunState.FAILED
    assert "failed its check on load" in run.error and "same log-probability" in run.error
    assert not run.responses.exists()


def test_sampled_run_and_the_cache(hf_endpoint, questionnaire):
    run = queue_run(
        endpoint=hf_endpoint,
        task_version=questionnaire,
        scoring_mode=ScoringMode.SAMPLED,
        samples=3,
        params={"temperature": 1.0},
        seed=5,
    )
    drain(run)
    assert run.state == RunState.COMPLETED
    assert run.responses.count() == 6
    assert not run.responses.filter(cached=True).exists()
    calls = CachedCall.objects.count()
    assert calls == 6  # N samples are N calls
    for r in run.responses.all():
        assert r.answer in {"", "1", "2", "3"}
        assert r.details["unparsed"] == (r.answer == "")

    again = queue_run(
        endpoint=hf_endpoint,
        task_version=questionnaire,
        scoring_mode=ScoringMode.SAMPLED,
        samples=4,
        params={"temperature": 1.0},
        seed=5,
    )
    drain(again)
    # Extending to 4 samples calls the model once more per item; the rest comes from the cache.
    assert CachedCall.objects.count() == calls + 2
    assert again.responses.filter(cached=True).count() == 6
    same = {(r.item_key, r.sample_index): r.raw_output for r in run.responses.all()}
    for r in again.responses.filter(sample_index__lt=3):
        assert r.raw_output == same[(r.item_key, r.sample_index)]


def test_sequential_play_feeds_back_and_resumes_after_a_crash(hf_endpoint, bandit):
    run = queue_run(endpoint=hf_endpoint, task_version=bandit, samples=2, seed=1)
    assert run.units.count() == 2
    drain(run)
    assert run.state == RunState.COMPLETED
    assert run.responses.count() == 8
    session = list(run.responses.filter(sample_index=0))
    session.sort(key=lambda r: int(r.item_key[1:]))
    # Blocks: arm F pays in block 1 (trials 1-2), arm J in block 2 (trials 3-4).
    for r in session:
        block = 1 if int(r.item_key[1:]) <= 2 else 2
        paid = "F" if block == 1 else "J"
        assert r.details["feedback"]["reward"] == int(r.answer == paid)
    # Later prompts show the earlier answers and their feedback.
    assert f"<<{session[0].answer}>> and get {session[0].details['feedback']['reward']}" in (
        session[1].prompt
    )

    # A worker dies after two trials of a new run: its lease expires, the reconciler
    # re-sends the unit, and the session continues where it stopped.
    crashed = queue_run(endpoint=hf_endpoint, task_version=bandit, samples=1, seed=1)
    unit = crashed.units.get()
    drain(crashed)
    kept = {
        r.item_key: (r.answer, r.pk) for r in crashed.responses.filter(item_key__in=["t1", "t2"])
    }
    crashed.responses.exclude(item_key__in=["t1", "t2"]).delete()
    unit.state = UnitState.RUNNING
    unit.lease_until = timezone.now() - timedelta(seconds=1)
    unit.attempts = 1
    unit.save()
    crashed.state = RunState.RUNNING
    crashed.save()
    assert reconcile_runs() == 1
    drain(crashed)
    assert crashed.state == RunState.COMPLETED
    assert crashed.responses.count() == 4
    for key, (answer, pk) in kept.items():
        assert crashed.responses.get(item_key=key).pk == pk  # untouched, not redone
        assert crashed.responses.get(item_key=key).answer == answer


def test_likelihood_run_sums_span_logprobs(hf_endpoint, questionnaire, tmp_path):
    from benchmark.services.datasets import import_psych201

    path = tmp_path / "h.jsonl"
    path.write_text(
        '{"text": "You pick <<A>> then <<B>>.", "experiment": "e", "participant": "1", "age": 30}\n'
        '{"text": "You pick <<B>>.", "experiment": "e", "participant": "2"}\n'
    )
    dataset, _ = import_psych201(source=path, file_name="h.jsonl")
    run = queue_run(
        endpoint=hf_endpoint,
        task_version=questionnaire,
        mode=RunMode.LIKELIHOOD,
        dataset=dataset,
        with_profile=True,
    )
    drain(run)
    assert run.state == RunState.COMPLETED
    first = run.responses.get(details__participant="1")
    assert len(first.details["span_logprobs"]) == 2
    assert math.isclose(first.logprob, sum(first.details["span_logprobs"]))
    # Each span as a lone continuation of the profile lines and the text before it.
    transcript = dataset.transcripts.get(participant="1")
    prefix = render_profile(transcript.profile)
    assert prefix  # the age is a profile line
    with get_runner("hf", model_path=hf_endpoint.model) as runner:
        alone = runner.score(
            [
                ScoreRequest(prefix + transcript.text[:start], transcript.text[start:end])
                for start, end in transcript.spans
            ]
        )
    assert first.details["span_logprobs"] == pytest.approx([r.logprob for r in alone], abs=1e-4)


def test_runs_the_endpoint_cannot_do_are_refused_before_queueing(questionnaire, bandit):
    claude = ModelEndpoint.objects.create(name="c", provider=Provider.ANTHROPIC, model="x")
    with pytest.raises(RunError, match="gives no log-probabilities"):
        queue_run(endpoint=claude, task_version=questionnaire, scoring_mode=ScoringMode.EXACT)
    with pytest.raises(RunError, match="cannot score log-probabilities"):
        queue_run(endpoint=claude, task_version=questionnaire, mode=RunMode.LIKELIHOOD)
    with pytest.raises(RunError, match="sequential tasks are played in participant mode"):
        queue_run(endpoint=claude, task_version=bandit, mode=RunMode.PREDICT_POPULATION)
    run = queue_run(endpoint=claude, task_version=questionnaire)
    assert run.scoring_mode == ScoringMode.SAMPLED


def test_estimate_uses_the_endpoint_prices(questionnaire):
    api = ModelEndpoint.objects.create(
        name="api",
        provider=Provider.OPENAI,
        model="m",
        settings={"base_url": "http://127.0.0.1:9"},
        price_input_per_mtok=Decimal("2"),
        price_output_per_mtok=Decimal("10"),
    )
    plan = estimate_cost(
        endpoint=api,
        task_version=questionnaire,
        mode=RunMode.PARTICIPANT,
        scoring_mode=ScoringMode.SAMPLED,
        samples=10,
    )
    assert plan.calls == 20
    expected = (Decimal(plan.input_tokens) * 2 + Decimal(plan.output_tokens) * 10) / 1_000_000
    assert plan.cost_usd == expected
    assert plan.cost_usd > 0


def test_cancel_retry_and_resume(hf_endpoint, questionnaire):
    run = queue_run(endpoint=hf_endpoint, task_version=questionnaire, batch_size=1)
    cancel_run(run=run)
    assert {u.state for u in run.units.all()} == {UnitState.CANCELLED}
    assert execute_unit(run.units.first().pk) == "skipped"
    assert ModelResponse.objects.filter(run=run).count() == 0
    resume_run(run=run)
    drain(run)
    assert run.state == RunState.COMPLETED
    assert run.responses.count() == 2

    failed = queue_run(endpoint=hf_endpoint, task_version=questionnaire, batch_size=1)
    failed.units.update(state=UnitState.FAILED, attempts=3, last_error="boom")
    retry_failed(run=failed)
    assert set(failed.units.values_list("attempts", flat=True)) == {0}
    drain(failed)
    assert failed.state == RunState.COMPLETED


@pytest.fixture
def api_server(tiny_llama):
    from tests.runners.servers import OpenAIServer

    with OpenAIServer(tiny_llama) as server:
        yield server


def api_endpoint(server, **extra):
    settings = {"base_url": server.url, "backoff_base": 0.01, "backoff_max": 0.05, "max_retries": 2}
    return ModelEndpoint.objects.create(
        name=extra.pop("name", "api"),
        provider=Provider.OPENAI,
        model="tiny",
        settings={**settings, **extra.pop("settings", {})},
        **extra,
    )


def test_budget_pauses_the_run_and_resume_finishes_it(api_server, questionnaire):
    endpoint = api_endpoint(
        api_server, price_input_per_mtok=Decimal("1000"), price_output_per_mtok=Decimal("1000")
    )
    run = queue_run(
        endpoint=endpoint,
        task_version=questionnaire,
        scoring_mode=ScoringMode.SAMPLED,
        samples=5,
        budget_usd=Decimal("0.02"),
        batch_size=1,
    )
    drain(run)
    assert run.state == RunState.PAUSED
    assert run.error == "budget reached"
    spent = run.responses.count()
    assert 0 < spent < 10
    assert run.cost_usd >= Decimal("0.02")
    with pytest.raises(RunError, match="has spent"):
        resume_run(run=run)
    resume_run(run=run, budget_usd=Decimal("10"))
    drain(run)
    assert run.state == RunState.COMPLETED
    assert run.responses.count() == 10
    assert run.cost_usd == sum(r.cost_usd for r in run.responses.all())


def test_a_poison_item_fails_after_three_attempts_and_the_rest_finishes(api_server, tmp_path):
    version = load(tmp_path, GOOD.replace("I am quiet.", "I am POISON."), "poison")
    run = queue_run(
        endpoint=api_endpoint(api_server),
        task_version=version,
        scoring_mode=ScoringMode.SAMPLED,
        samples=2,
        batch_size=1,
    )
    drain(run, rounds=5)
    assert run.state == RunState.COMPLETED
    poisoned = run.units.get(payload=["q2"])
    assert (poisoned.state, poisoned.attempts) == (UnitState.FAILED, 3)
    assert "poisoned" in poisoned.last_error
    assert "1 unit(s) failed: unit 1: item q2: " in run.error
    assert sorted(run.responses.values_list("item_key", "sample_index")) == [("q1", 0), ("q1", 1)]
    assert run_progress(run).units_failed == 1


def test_a_refused_key_fails_the_run_early_with_the_server_message(
    api_server, questionnaire, monkeypatch
):
    api_server.api_key = "right-key"
    monkeypatch.setenv("GEPPETTO_KEY_RUN", "wrong-key")
    endpoint = api_endpoint(api_server, api_key_env="GEPPETTO_KEY_RUN")
    run = queue_run(endpoint=endpoint, task_version=questionnaire, batch_size=1)
    calls_before = api_server.calls
    drain(run)
    assert run.state == RunState.FAILED
    assert "Incorrect API key provided" in run.error
    assert "wrong-key" not in run.error
    assert api_server.calls - calls_before == 1  # one refusal, no retries, no other unit tried
    assert set(run.units.values_list("state", flat=True)) <= {
        UnitState.CANCELLED,
        UnitState.RUNNING,
    }


def test_predict_population_parses_stated_percentages(hf_endpoint, questionnaire):
    run = queue_run(
        endpoint=hf_endpoint,
        task_version=questionnaire,
        mode=RunMode.PREDICT_POPULATION,
        samples=3,
        seed=2,
    )
    assert run.scoring_mode == ScoringMode.SAMPLED
    drain(run)
    assert run.state == RunState.COMPLETED
    assert run.responses.count() == 6
    for r in run.responses.all():
        assert "percentage of people" in r.prompt
        assert r.prompt.endswith("Answer:")
        assert r.details["path"] == "sampled"
        # A random tiny model rarely states a valid distribution: it is kept and flagged.
        if r.details["unparsed"]:
            assert r.distribution is None
        else:
            assert math.isclose(sum(r.distribution.values()), 1.0)


def test_predict_population_exact_gives_one_prediction_per_item(hf_endpoint, questionnaire):
    from benchmark.runners.population import POPULATION_EXACT_DEFINITION, population_prediction

    run = queue_run(
        endpoint=hf_endpoint,
        task_version=questionnaire,
        mode=RunMode.PREDICT_POPULATION,
        scoring_mode=ScoringMode.EXACT,
        samples=3,  # ignored: an exact prediction is one per item
    )
    assert run.scoring_mode == ScoringMode.EXACT
    # The definition is on the run and in its prompt hash, apart from the sampled runs'.
    assert run.params["exact_definition"] == POPULATION_EXACT_DEFINITION
    sampled = queue_run(
        endpoint=hf_endpoint, task_version=questionnaire, mode=RunMode.PREDICT_POPULATION
    )
    assert sampled.scoring_mode == ScoringMode.SAMPLED and sampled.prompt_hash != run.prompt_hash
    assert sum(u.expected for u in run.units.all()) == 2
    drain(run)
    assert run.state == RunState.COMPLETED
    responses = list(run.responses.order_by("item_key"))
    assert [(r.item_key, r.sample_index) for r in responses] == [("q1", 0), ("q2", 0)]
    with get_runner("hf", model_path=hf_endpoint.model) as runner:
        for r in responses:
            assert r.details["path"] == "exact" and r.details["unparsed"] is False
            assert r.prompt.endswith("Answer:") and "percentage of people" in r.prompt
            alone = population_prediction(runner, r.prompt, ["1", "2", "3"])
            assert r.distribution == pytest.approx(alone.probs, abs=1e-9)
            assert r.details["percent"] == pytest.approx(alone.percent, abs=1e-7)
            assert sum(r.details["percent"].values()) == pytest.approx(100.0)
            assert r.mass_outside == pytest.approx(sum(alone.mass_outside.values()) / 3)


def test_predict_population_exact_needs_log_probabilities(questionnaire):
    claude = ModelEndpoint.objects.create(name="c", provider=Provider.ANTHROPIC, model="x")
    with pytest.raises(RunError, match="gives no log-probabilities"):
        queue_run(
            endpoint=claude,
            task_version=questionnaire,
            mode=RunMode.PREDICT_POPULATION,
            scoring_mode=ScoringMode.EXACT,
        )


def test_predict_individual_uses_each_participants_profile(hf_endpoint, questionnaire):
    from benchmark.models import DatasetSource, HumanDataset, Transcript

    dataset = HumanDataset.objects.create(
        slug="people",
        name="people",
        source=DatasetSource.BUNDLED,
        content_sha256="c" * 64,
        task=questionnaire.task,
    )
    for i, age in enumerate((21, 67)):
        Transcript.objects.create(
            dataset=dataset,
            line=i + 1,
            participant=str(i),
            answers={"q1": 3, "q2": 1},
            profile={"age": age},
        )
    run = queue_run(
        endpoint=hf_endpoint,
        task_version=questionnaire,
        mode=RunMode.PREDICT_INDIVIDUAL,
        dataset=dataset,
    )
    drain(run)
    assert run.state == RunState.COMPLETED
    keys = sorted(run.responses.values_list("item_key", flat=True))
    ids = sorted(dataset.transcripts.values_list("pk", flat=True))
    assert keys == sorted(f"{pid}:{q}" for pid in ids for q in ("q1", "q2"))
    young = run.responses.get(item_key=f"{ids[0]}:q1")
    assert young.prompt.startswith("Interviewer: What is your age?\nInterviewee: 21\n")
    old = run.responses.get(item_key=f"{ids[1]}:q1")
    assert "Interviewee: 67" in old.prompt
    assert young.distribution != old.distribution  # the profile changes what the model sees


def test_a_missing_key_variable_fails_the_run_early(api_server, questionnaire, monkeypatch):
    monkeypatch.delenv("GEPPETTO_KEY_UNSET", raising=False)
    endpoint = api_endpoint(api_server, api_key_env="GEPPETTO_KEY_UNSET")
    run = queue_run(endpoint=endpoint, task_version=questionnaire, batch_size=1)
    calls_before = api_server.calls
    drain(run)
    assert run.state == RunState.FAILED
    assert "GEPPETTO_KEY_UNSET is not set" in run.error
    assert api_server.calls == calls_before


def test_an_unreachable_endpoint_fails_the_run_early(questionnaire):
    endpoint = ModelEndpoint.objects.create(
        name="nowhere",
        provider=Provider.OPENAI,
        model="m",
        settings={"base_url": "http://127.0.0.1:9", "max_retries": 1, "backoff_base": 0.01},
    )
    run = queue_run(endpoint=endpoint, task_version=questionnaire, batch_size=1)
    drain(run)
    assert run.state == RunState.FAILED
    assert "cannot be reached" in run.error


def test_a_generated_nul_character_is_stored(questionnaire, monkeypatch):
    from tests.runners.servers import AnthropicServer

    monkeypatch.setenv("GEPPETTO_KEY_NUL", "k")
    with AnthropicServer(reply="2\x00") as server:
        endpoint = ModelEndpoint.objects.create(
            name="nul",
            provider=Provider.ANTHROPIC,
            model="m",
            api_key_env="GEPPETTO_KEY_NUL",
            settings={"base_url": server.url},
        )
        run = queue_run(endpoint=endpoint, task_version=questionnaire)
        drain(run)
    assert run.state == RunState.COMPLETED
    assert set(run.responses.values_list("raw_output", flat=True)) == {"2\ufffd"}
    assert set(run.responses.values_list("answer", flat=True)) == {"2"}
