"""Exact option distributions measure the answer: the option's own tokens after ``<<``.

For single-token, prefix-free options the stored distribution is the next-token softmax
restricted to the options, computed here without the runners (tests/runners/cases.py).
"""

import pytest

from benchmark.runners import get_runner
from benchmark.runners.options import closing_for, option_distribution
from tests.runners.cases import LIKERT, LIKERT_PROMPT, first_token_distribution
from tests.runners.servers import OpenAIServer


def test_the_closing_marker_is_used_only_where_options_are_not_prefix_free():
    assert closing_for(LIKERT) == ""
    assert closing_for(["A", "B"]) == ""
    assert closing_for(["L", "R"]) == ""
    assert closing_for([str(i) for i in range(1, 11)]) == ">>"  # "1" is a prefix of "10"
    assert closing_for(["yes", "yes please"]) == ">>"


def test_hf_runner_gives_the_first_token_distribution(tiny_llama):
    reference = first_token_distribution(tiny_llama, LIKERT_PROMPT, LIKERT)
    with get_runner("hf", model_path=str(tiny_llama)) as runner:
        d = option_distribution(runner, LIKERT_PROMPT, LIKERT)
    assert d.closing == ""
    assert d.probs == pytest.approx(reference, abs=1e-6)


def test_openai_runner_gives_the_first_token_distribution(tiny_llama):
    reference = first_token_distribution(tiny_llama, LIKERT_PROMPT, LIKERT)
    with (
        OpenAIServer(tiny_llama) as server,
        get_runner("openai", base_url=server.url, model="tiny") as runner,
    ):
        d = option_distribution(runner, LIKERT_PROMPT, LIKERT)
    assert [p["prompt"][0].endswith("<<1") for p in server.payloads[:1]] == [True]
    assert d.probs == pytest.approx(reference, abs=1e-6)
