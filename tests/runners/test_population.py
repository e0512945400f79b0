"""Exact population predictions: expected percentages under the model's number distribution.

The reference is computed here without the runners: transformers reads every text
``prompt + " o: " + "n%"`` whole (one right-padded batch per option); the number's tokens
are those that end after the context, and the expected value and renormalisations are
plain sums.
"""

import math

import pytest

from benchmark.runners import get_runner
from benchmark.runners.options import closing_for
from benchmark.runners.population import (
    NUMBERS,
    number_continuations,
    population_prediction,
)
from tests.runners.servers import OpenAIServer

PROMPT = (
    "Rate each statement from 1 to 5. I worry.\n\nInstead of answering yourself, estimate how "
    "people answer this question. For each option (1, 2, 3) give the percentage of people who "
    "choose it, in the form 1: x%, 2: x%, 3: x%. The percentages must add up to 100.\nAnswer:"
)
OPTIONS = ["1", "2", "3"]


def reference_prediction(model_dir, prompt: str, options: list[str]) -> dict:
    """Each option's expected percentage and mass outside, and the renormalised shares."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).eval()
    expected, outside = {}, {}
    for option in options:
        context = f"{prompt} {option}: "
        texts, starts = [], []
        for n in range(101):
            enc = tokenizer(f"{context}{n}%", return_offsets_mapping=True)
            texts.append(enc["input_ids"])
            starts.append(
                next(j for j, (_, end) in enumerate(enc["offset_mapping"]) if end > len(context))
            )
        # One right-padded batch: a causal model's logits at real tokens ignore the padding.
        width = max(map(len, texts))
        batch = torch.tensor([ids + [0] * (width - len(ids)) for ids in texts])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in texts])
        with torch.no_grad():
            logits = model(input_ids=batch, attention_mask=mask).logits.double()
        logp = torch.log_softmax(logits, dim=-1)
        probs = [
            math.exp(sum(float(logp[n, j - 1, ids[j]]) for j in range(starts[n], len(ids))))
            for n, ids in enumerate(texts)
        ]
        total = sum(probs)
        expected[option] = sum(n * p for n, p in enumerate(probs)) / total
        outside[option] = 1 - total
    shares = {o: e / sum(expected.values()) for o, e in expected.items()}
    return {"expected": expected, "outside": outside, "shares": shares}


@pytest.fixture(scope="module")
def reference(tiny_llama):
    return reference_prediction(tiny_llama, PROMPT, OPTIONS)


def test_the_numbers_are_closed_by_the_percent_sign():
    continuations = number_continuations()
    assert len(continuations) == len(NUMBERS) == 101
    assert continuations[:3] == ["0%", "1%", "2%"] and continuations[-1] == "100%"
    assert closing_for(list(NUMBERS), close="%") == "%"  # "1" is a prefix of "10" and "100"
    assert closing_for(continuations, close="%") == ""  # closed, they are prefix-free


def test_hf_runner_gives_the_expected_percentages_renormalised(tiny_llama, reference):
    with get_runner("hf", model_path=str(tiny_llama)) as runner:
        p = population_prediction(runner, PROMPT, OPTIONS)
    assert p.expected == pytest.approx(reference["expected"], abs=1e-4)
    assert p.mass_outside == pytest.approx(reference["outside"], abs=1e-6)
    assert p.probs == pytest.approx(reference["shares"], abs=1e-6)
    assert sum(p.percent.values()) == pytest.approx(100.0)
    assert all(0 <= v <= 100 for v in p.percent.values())
    assert all(sum(p.numbers[o]) == pytest.approx(1.0) for o in OPTIONS)
    assert p.closing == "%"


def test_openai_runner_gives_the_same_prediction(tiny_llama, reference):
    with (
        OpenAIServer(tiny_llama) as server,
        get_runner("openai", base_url=server.url, model="tiny", batch_size=64) as runner,
    ):
        p = population_prediction(runner, PROMPT, OPTIONS)
    prompts = sorted(text for payload in server.payloads for text in payload["prompt"])
    assert prompts == sorted(f"{PROMPT} {o}: {n}%" for o in OPTIONS for n in range(101))
    assert p.probs == pytest.approx(reference["shares"], abs=1e-6)
    assert p.mass_outside == pytest.approx(reference["outside"], abs=1e-6)


def test_no_options_is_refused(tiny_llama):
    with (
        get_runner("hf", model_path=str(tiny_llama)) as runner,
        pytest.raises(ValueError, match="no options"),
    ):
        population_prediction(runner, PROMPT, [])
