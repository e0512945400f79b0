"""Scoring every response span of a transcript in one pass (rolling windows when long)."""

import re

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from benchmark.runners import get_runner
from benchmark.runners.base import ScoreRequest, SpansRequest
from benchmark.runners.tokens import span_tokens, text_encoding, windows
from tests.runners.servers import OpenAIServer

TRIALS = " ".join(
    f"Round {i}: you press <<{'FJ'[i % 2]}>> and get {i % 3} points." for i in range(1, 13)
)
TEXT = "You play a game with two buttons. " + TRIALS


def spans_of(text: str) -> tuple[tuple[int, int], ...]:
    """Character spans of the responses between << and >>."""
    return tuple((m.start(1), m.end(1)) for m in re.finditer(r"<<(.*?)>>", text))


@pytest.fixture(scope="module")
def reference(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, local_files_only=True)
    return tok, model.eval()


def full_pass(reference, text: str, spans) -> list[list[float]]:
    """By hand: one forward pass over the whole text, tokens overlapping each span."""
    tok, model = reference
    enc = tok(text, return_offsets_mapping=True)
    ids = enc["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    return [
        [
            float(logp[i - 1, ids[i]])
            for i, (s, e) in enumerate(enc["offset_mapping"])
            if s < end and e > start and i > 0
        ]
        for start, end in spans
    ]


def test_windows_by_hand():
    assert windows(3, 8) == [(0, 3, 1)]
    assert windows(10, 4) == [(0, 4, 1), (2, 6, 4), (4, 8, 6), (6, 10, 8)]
    assert windows(9, 4) == [(0, 4, 1), (2, 6, 4), (4, 8, 6), (5, 9, 8)]
    with pytest.raises(ValueError, match="at least 2"):
        windows(5, 1)


@pytest.mark.parametrize("length", [2, 3, 4, 7, 16])
@pytest.mark.parametrize("n", [1, 2, 5, 16, 17, 50])
def test_windows_predict_every_token_once_with_enough_context(n, length):
    predicted = []
    for start, end, first in windows(n, length):
        assert end - start <= length and start < first <= end
        assert first - start >= length // 2 or start == 0
        predicted += range(first, end)
    assert predicted == list(range(1, n))


def test_spans_are_the_tokens_that_overlap_them(reference):
    tok, _ = reference
    _, offsets, special = text_encoding(tok, TEXT)
    picks = span_tokens(offsets, special, spans_of(TEXT), TEXT)
    assert len(picks) == 12
    for pick, (start, end) in zip(picks, spans_of(TEXT), strict=True):
        covered = "".join(TEXT[offsets[i][0] : offsets[i][1]] for i in pick)
        assert TEXT[start:end] in covered
    # Without a beginning-of-text token, a span at the start has nothing before it.
    offsets, special = [(0, 5), (5, 11)], [0, 0]
    assert span_tokens(offsets, special, [(6, 8)], "Hello there") == [[1]]
    with pytest.raises(ValueError, match="'He' starts the text"):
        span_tokens(offsets, special, [(0, 2)], "Hello there")
    with pytest.raises(ValueError, match="no tokens for the span"):
        span_tokens(offsets, special, [(11, 12)], "Hello there!")


def test_hf_spans_equal_one_hand_computed_pass(tiny_llama, reference):
    spans = spans_of(TEXT)
    with get_runner("hf", model_path=str(tiny_llama)) as runner:
        [results] = runner.score_spans([SpansRequest(TEXT, spans)])
        per_span = runner.score(
            [ScoreRequest(TEXT[:start], TEXT[start:end]) for start, end in spans]
        )
    expected = full_pass(reference, TEXT, spans)
    for result, want, alone in zip(results, expected, per_span, strict=True):
        assert result.token_logprobs == pytest.approx(want, abs=1e-5)
        assert result.logprob == pytest.approx(sum(want), abs=1e-5)
        # Read with everything before it, a span scores as it does as a lone continuation.
        assert result.logprob == pytest.approx(alone.logprob, abs=1e-4)


def test_hf_reads_a_long_text_in_rolling_windows(tiny_llama, reference):
    tok, model = reference
    spans = spans_of(TEXT)
    ids = tok(TEXT)["input_ids"]
    length = 24
    assert len(ids) > 3 * length
    calls = []
    with get_runner("hf", model_path=str(tiny_llama), max_length=length) as runner:
        hook = runner.model.register_forward_hook(lambda *_: calls.append(1))
        [results] = runner.score_spans([SpansRequest(TEXT, spans)])
        hook.remove()
    plan = windows(len(ids), length)
    assert len(calls) <= len(plan)  # one pass per window (fewer when one holds no span)
    _, offsets, special = text_encoding(tok, TEXT)
    picks = span_tokens(offsets, special, spans, TEXT)
    for pick, result in zip(picks, results, strict=True):
        expected = []
        for t in pick:
            # By hand: the window that predicts token t, and the model on that slice alone.
            start = next(a for a, b, first in plan if first <= t < b)
            with torch.no_grad():
                logits = model(torch.tensor([ids[start : t + 1]])).logits[0, -2]
            expected.append(float(torch.log_softmax(logits, dim=-1)[ids[t]]))
        assert result.token_logprobs == pytest.approx(expected, abs=1e-5)


def test_openai_reads_every_span_from_one_echoed_prompt(tiny_llama, reference):
    spans = spans_of(TEXT)
    with (
        OpenAIServer(tiny_llama) as server,
        get_runner("openai", base_url=server.url, model="tiny") as runner,
    ):
        [results] = runner.score_spans([SpansRequest(TEXT, spans)])
        assert server.calls == 1
        assert server.payloads[0]["prompt"] == [TEXT] and server.payloads[0]["echo"] is True
    for result, want in zip(results, full_pass(reference, TEXT, spans), strict=True):
        assert result.token_logprobs == pytest.approx(want, abs=1e-4)


def test_bad_spans_are_refused_before_any_call(tiny_llama):
    with get_runner("hf", model_path=str(tiny_llama)) as runner:
        with pytest.raises(ValueError, match=r"span \(5, 5\) is empty or outside the text"):
            runner.score_spans([SpansRequest("abcdef", ((5, 5),))])
        with pytest.raises(ValueError, match=r"span \(2, 9\) is empty or outside the text"):
            runner.score_spans([SpansRequest("abcdef", ((2, 9),))])
