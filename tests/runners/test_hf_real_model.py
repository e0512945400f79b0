"""The hf runner's shortcuts on the bundled SmolLM2, against the model's own forward pass.

Trees, packed rows, a pass's shared start and the trie of tails are checked at load on
short made-up sequences and in other tests on a tiny random model; here they run on the
real model with real prompts in one call: IPIP items (rows that share the task's
instructions), a population item's numbers (a trie), and a Dezfouli transcript item
longer than a packed row. Slow: a real model.
"""

from pathlib import Path

import pytest
import torch

from benchmark import psych201
from benchmark.runners.base import ScoreRequest
from benchmark.runners.hf import HFRunner
from benchmark.runners.population import answer_context, number_continuations
from benchmark.runners.tokens import continuation_split
from benchmark.services.runs import population_prompt
from tests.test_local_model_engines import ipip_prompts

pytestmark = pytest.mark.slow

DEZFOULI = Path(__file__).resolve().parents[2] / "benchmark/data/psych201/dezfouli2019.jsonl.zip"


def transcript_item(tokenizer, tokens: int) -> str:
    """The first ``tokens`` tokens of a Dezfouli transcript, then the answer slot."""
    record = next(psych201.iter_records(DEZFOULI, DEZFOULI.name))
    ids = tokenizer(record.text)["input_ids"][:tokens]
    return tokenizer.decode(ids) + " You press <<"


def test_every_shortcut_equals_the_models_own_forward_pass(smollm2_folder):
    with HFRunner(str(smollm2_folder), pack_tokens=256) as runner:
        assert runner._split and runner._trees and runner._shares
        prompts = ipip_prompts()
        first, options = prompts[0]
        requests = [ScoreRequest(text, o) for text, opts in prompts for o in opts]
        slot = answer_context(population_prompt(first.removesuffix("<<"), options), "3")
        requests += [ScoreRequest(slot, n) for n in number_continuations()[:30]]
        requests += [ScoreRequest(transcript_item(runner.tokenizer, 600), k) for k in "FJ"]
        cached = []  # whether each decoder pass started from a repeated cache
        runner.model.get_decoder().register_forward_hook(
            lambda _m, _a, kwargs, _o: cached.append(kwargs.get("past_key_values") is not None),
            with_kwargs=True,
        )
        results = runner.score(requests)
        assert any(cached)  # some pass read its rows' shared start once
        worst = 0.0
        with torch.inference_mode():
            for request, result in zip(requests, results, strict=True):
                ids, n = continuation_split(runner.tokenizer, request.context, request.continuation)
                logits = runner.model(input_ids=torch.tensor([ids])).logits[0]
                logp = torch.log_softmax(logits.float(), dim=-1)
                expected = [float(logp[j - 1, ids[j]]) for j in range(len(ids) - n, len(ids))]
                gaps = [abs(a - b) for a, b in zip(result.token_logprobs, expected, strict=True)]
                worst = max(worst, *gaps)
    assert worst < 1e-4
