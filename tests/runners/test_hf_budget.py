"""The hf runner's memory bounds: a token budget per forward pass, logits only where scored."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from benchmark.runners.base import ScoreRequest, SpansRequest
from benchmark.runners.hf import HFRunner
from benchmark.runners.tokens import continuation_split
from tests.runners.cases import REQUESTS
from tests.tiny_model import build_tiny_gemma3


def long_text(k: int, rounds: int = 4) -> str:
    """A transcript-like text: several rounds of a game."""
    return "".join(
        f"Round {k}.{i}: you press <<F>> and get {i % 3} points. " for i in range(rounds)
    )


ITEM = "Rate each statement from 1 to 5. Statement {}: I talk a lot. Your rating: <<"
MIX = (
    REQUESTS
    + [ScoreRequest(ITEM.format(k), f"{o}>>") for k in range(6) for o in "12345"]
    + [ScoreRequest(long_text(k) + "Round 13: you press <<", "J>>") for k in range(3)]
    + [ScoreRequest(long_text(9), o) for o in ["Round", "Round 13", " The end."]]
)


@pytest.fixture(scope="module")
def reference(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, local_files_only=True)
    return tok, model.eval()


def alone(reference, request: ScoreRequest) -> list[float]:
    """By hand: the full log-softmax of the whole sequence, read alone and unpadded."""
    tok, model = reference
    ids, n_cont = continuation_split(tok, request.context, request.continuation)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    return [float(logp[j - 1, ids[j]]) for j in range(len(ids) - n_cont, len(ids))]


def record_passes(runner: HFRunner) -> tuple[list, list]:
    """Hooks that record the shape of every decoder pass and the rows of every head call."""
    passes, head_rows = [], []
    runner.model.get_decoder().register_forward_hook(
        lambda _m, _a, kwargs, _out: passes.append(tuple(kwargs["input_ids"].shape)),
        with_kwargs=True,
    )
    runner.model.get_output_embeddings().register_forward_hook(
        lambda _m, args, _out: head_rows.append(args[0].reshape(-1, args[0].shape[-1]).shape[0])
    )
    return passes, head_rows


@pytest.mark.parametrize(("budget", "pack"), [(96, 32), (200, 64), (100_000, 512)])
def test_no_pass_exceeds_the_token_budget_and_results_equal_each_request_alone(
    tiny_llama, reference, budget, pack
):
    tok = reference[0]
    lengths = [len(continuation_split(tok, r.context, r.continuation)[0]) for r in MIX]
    assert max(lengths) <= 96 < sum(lengths)  # every sequence fits the smallest budget
    with HFRunner(str(tiny_llama), max_batch_tokens=budget, pack_tokens=pack) as runner:
        assert runner._split and runner._trees  # the fast paths were checked at load
        passes, _ = record_passes(runner)
        results = runner.score(MIX)
    assert passes and all(rows * width <= budget for rows, width in passes)
    if budget == 96:
        assert len(passes) > 5  # the budget really split the work
    for request, result in zip(MIX, results, strict=True):
        assert result.token_logprobs == pytest.approx(alone(reference, request), abs=1e-5)


def test_packed_trees_equal_the_plain_padded_path(tiny_llama):
    with HFRunner(str(tiny_llama), max_batch_tokens=256, pack_tokens=128) as runner:
        passes, _ = record_passes(runner)
        packed = runner.score(MIX)
        n_packed = len(passes)
        runner._trees = False  # what a model whose attention ignores tree masks gets
        plain = runner.score(MIX)
    assert n_packed < len(passes) - n_packed  # trees share contexts: fewer passes
    for a, b in zip(packed, plain, strict=True):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-5)
        assert a.greedy == b.greedy and a.tokens == b.tokens


def test_the_head_computes_only_the_rows_that_predict_continuation_tokens(tiny_llama, reference):
    tok = reference[0]
    with HFRunner(str(tiny_llama)) as runner:
        passes, head_rows = record_passes(runner)
        runner.score(MIX)
        read = sum(rows * width for rows, width in passes)
        scored = sum(continuation_split(tok, r.context, r.continuation)[1] for r in MIX)
        assert sum(head_rows) == scored
        assert read > 5 * scored  # the contexts were read, but never through the head

        head_rows.clear()
        text = long_text(1, 8)
        spans = ((text.index("<<F") + 2, text.index("<<F") + 3), (len(text) - 10, len(text) - 5))
        [results] = runner.score_spans([SpansRequest(text, spans)])
        assert sum(head_rows) == sum(len(r.tokens) for r in results)


def test_budget_settings_are_checked(tiny_llama):
    with pytest.raises(
        ValueError, match=r"hf runner: max_batch_tokens must be .* at least 1, not 0"
    ):
        HFRunner(str(tiny_llama), max_batch_tokens=0)
    with pytest.raises(ValueError, match=r"pack_tokens must be .* not '512'"):
        HFRunner(str(tiny_llama), pack_tokens="512")


def test_items_that_share_instructions_read_them_once(tiny_llama, reference):
    tok = reference[0]
    items = [r for r in MIX if r.context.startswith("Rate each statement from 1 to 5. Statement")]
    encoded = [continuation_split(tok, r.context, r.continuation) for r in items]
    trees = {}  # context → its tokens before the options, plus every option's tokens
    for r, (ids, n) in zip(items, encoded, strict=True):
        trees[r.context] = trees.get(r.context, len(ids) - n) + n
    first = encoded[0][0]
    root = min(
        next(k for k, (a, b) in enumerate(zip(first, ids, strict=False)) if a != b)
        for ids, _ in encoded[5:]  # other items (the first five are the first item's options)
    )
    assert len(trees) == 6 and root > 10
    with HFRunner(str(tiny_llama), pack_tokens=512) as runner:
        passes, _ = record_passes(runner)
        results = runner.score(items)
    # One row: the shared instructions once, then each item's rest and its options.
    assert passes == [(1, root + sum(t - root for t in trees.values()))]
    for request, result in zip(items, results, strict=True):
        assert result.token_logprobs == pytest.approx(alone(reference, request), abs=1e-5)


def test_rows_of_one_pass_read_their_common_start_once(tiny_llama, reference):
    # Each item's tree fills a row of its own (pack_tokens), as an exact population
    # item's options do; the instructions they share are read once for the pass.
    instructions = "Read each statement and say how well it describes you, from 1 to 5. " * 2
    items = [
        ScoreRequest(f"{instructions}Statement {k}: <<", f"{o}>>") for k in range(4) for o in "12"
    ]
    tok = reference[0]
    encoded = [continuation_split(tok, r.context, r.continuation) for r in items]
    columns = zip(*(ids for ids, _ in encoded), strict=False)
    common = next(k for k, column in enumerate(columns) if len(set(column)) > 1)
    with HFRunner(str(tiny_llama), pack_tokens=16, batch_size=8) as runner:
        assert runner._shares  # checked at load against each sequence read alone
        passes, _ = record_passes(runner)
        shared = runner.score(items)
        runner._shares = False
        with_start = len(passes)  # the passes of the first call
        separate = runner.score(items)
    read_once, rows = passes[:with_start], passes[with_start:]
    assert common >= 16 and len(rows) == 1 and rows[0][0] == 4  # four rows, one pass
    width = rows[0][1]
    assert read_once == [(1, common), (4, width - common)]
    for request, a, b in zip(items, shared, separate, strict=True):
        assert a.token_logprobs == pytest.approx(alone(reference, request), abs=1e-5)
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-5)
        assert a.greedy == b.greedy


def test_tails_that_start_alike_are_read_once_as_a_trie(tiny_llama, reference):
    # An exact population item's answer slot: the numbers 0% … 100% after one context.
    context = "What share of people answer 3? Answer: 1: 20%, 2: 15%, 3: "
    requests = [ScoreRequest(context, f"{n}%") for n in range(101)]
    tok = reference[0]
    seqs = [continuation_split(tok, r.context, r.continuation)[0] for r in requests]
    columns = zip(*seqs, strict=False)
    prefix = next(k for k, column in enumerate(columns) if len(set(column)) > 1)
    # Counted here from the token sequences: each distinct start after the prefix once.
    nodes = {tuple(seq[:k]) for seq in seqs for k in range(prefix + 1, len(seq) + 1)}
    flat = sum(len(seq) - prefix for seq in seqs)
    assert len(nodes) < 0.8 * flat  # the numbers share their first digits
    with HFRunner(str(tiny_llama)) as runner:
        passes, _ = record_passes(runner)
        results = runner.score(requests)
    assert passes == [(1, prefix + len(nodes))]
    for request, result in zip(requests, results, strict=True):
        assert result.token_logprobs == pytest.approx(alone(reference, request), abs=1e-5)


def test_a_sliding_window_model_reads_trees_longer_than_its_window_as_sequences(tmp_path):
    # Gemma 3's sliding-window layers mask by their window; a tree mask does not, so a
    # tree longer than the window would let those layers see too far back.
    folder = build_tiny_gemma3(tmp_path / "gemma3", window=16)
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    short = [ScoreRequest("I talk a lot. <<", f"{o}>>") for o in "123"]
    long = [ScoreRequest(ITEM.format(7) + " I like parties. Rating: <<", f"{o}>>") for o in "123"]
    split = [continuation_split(tok, r.context, r.continuation) for r in short + long]
    lengths = [len(ids) for ids, _ in split]
    tree = lengths[0] - split[0][1] + sum(n for _, n in split[:3])  # context, then options
    assert tree < 16 < min(lengths[3:])
    with HFRunner(str(folder)) as runner:
        assert runner._window == 16 and runner._trees and not runner._shares
        passes, _ = record_passes(runner)
        results = runner.score(short + long)
    # The short item as one tree (its context once), the long one as three sequences.
    assert sorted(passes) == sorted([(1, tree), (3, max(lengths[3:]))])
    for request, result in zip(short + long, results, strict=True):
        assert result.token_logprobs == pytest.approx(alone((tok, model), request), abs=1e-5)
