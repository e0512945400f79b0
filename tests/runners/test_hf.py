"""The hf runner against a hand-computed log-softmax gather on the same tiny model."""

import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from benchmark.runners import RUNNERS, get_runner, runner_class
from benchmark.runners.base import CapabilityError, SampleRequest, ScoreRequest, require
from benchmark.runners.hf import HFRunner
from benchmark.runners.options import option_distribution
from benchmark.runners.tokens import continuation_split
from tests.runners.cases import REQUESTS


@pytest.fixture(scope="module")
def runner(tiny_llama):
    with get_runner("hf", model_path=str(tiny_llama), batch_size=8) as r:
        yield r


@pytest.fixture(scope="module")
def reference(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, local_files_only=True)
    return tok, model.eval()


def by_hand(reference, context: str, continuation: str) -> list[float]:
    """Per-token log-probabilities of the continuation, one unpadded sequence at a time."""
    tok, model = reference
    enc = tok(context + continuation, return_offsets_mapping=True)
    ids = enc["input_ids"]
    # The first token that ends after the context belongs to the continuation.
    first = next(i for i, (_, end) in enumerate(enc["offset_mapping"]) if end > len(context))
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    return [float(logp[i - 1, ids[i]]) for i in range(first, len(ids))]


def test_the_registry_imports_lazily_and_names_unknown_providers():
    assert set(RUNNERS) == {"hf", "vllm", "openai", "anthropic"}
    assert runner_class("hf") is HFRunner
    with pytest.raises(ValueError, match=r"unknown provider 'gpt'; known: \['anthropic', 'hf'"):
        get_runner("gpt", model="x")


def test_scores_equal_a_hand_computed_gather_in_one_padded_batch(runner, reference):
    results = runner.score(REQUESTS)
    for request, result in zip(REQUESTS, results, strict=True):
        expected = by_hand(reference, request.context, request.continuation)
        assert result.token_logprobs == pytest.approx(expected, abs=1e-5)
        assert result.logprob == pytest.approx(sum(expected), abs=1e-5)
        assert len(result.tokens) == len(expected)


def test_options_sharing_a_context_reuse_its_cache_and_equal_the_gather(
    runner, reference, tiny_llama
):
    context = "Rate each statement from 1 to 3. I talk a lot. I am quiet. <<"
    options = ["1>>", "10>>", "3>>", "A B C D>>", " Paris and London>>"]
    requests = [ScoreRequest(context, o) for o in options]
    shared = runner.score(requests)
    # A batch size of 2 splits the suffixes over several cache copies.
    with get_runner("hf", model_path=str(tiny_llama), batch_size=2) as small:
        split = small.score(requests)
    for option, a, b in zip(options, shared, split, strict=True):
        expected = by_hand(reference, context, option)
        assert a.token_logprobs == pytest.approx(expected, abs=1e-5)
        assert b.token_logprobs == pytest.approx(expected, abs=1e-5)
        assert a.greedy == b.greedy


def test_tokens_are_split_by_character_offsets(runner):
    (plain, straddling) = runner.score([REQUESTS[1], REQUESTS[4]])
    assert plain.tokens == ["A", ">>"]
    # " talk" starts inside the context ("ta") and is scored with the continuation.
    assert straddling.tokens[0] == " talk"
    assert "".join(straddling.tokens) == " talk a lot. <<"
    ids, n_cont = continuation_split(runner.tokenizer, "You choose <<", "A>>")
    assert runner.tokenizer.decode(ids[-n_cont:]) == "A>>"
    with pytest.raises(ValueError, match="empty continuation"):
        runner.score([ScoreRequest("You choose <<", "")])


def test_batch_of_one_and_batch_of_eight_agree(runner, tiny_llama):
    eight = runner.score(REQUESTS + REQUESTS[:2])
    with HFRunner(str(tiny_llama), batch_size=1) as single:
        ones = single.score(REQUESTS + REQUESTS[:2])
    for a, b in zip(eight, ones, strict=True):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-5)
        assert a.greedy == b.greedy


def test_option_distribution_sums_to_one(runner):
    prompt = "Rate each statement from 1 to 5. I worry. <<"
    d = option_distribution(runner, prompt, ["1", "2", "3", "4", "5"])
    assert d.mode == "exact"
    assert math.fsum(d.probs.values()) == pytest.approx(1.0, abs=1e-12)
    assert 0.0 <= d.mass_outside <= 1.0
    inside = math.fsum(math.exp(v) for v in d.logprobs.values())
    assert d.mass_outside == pytest.approx(1 - inside)
    direct = runner.score([ScoreRequest(prompt, "4")])[0].logprob  # prefix-free: no ">>"
    assert d.logprobs["4"] == pytest.approx(direct, abs=1e-6)
    for key, p in d.probs.items():
        assert p == pytest.approx(math.exp(d.logprobs[key]) / inside)


def test_seeded_sampling_is_reproducible_with_token_logprobs(runner):
    request = SampleRequest("You choose <<", max_tokens=5, temperature=1.0, seed=3)
    first, other_seed = runner.sample(
        [request, SampleRequest("You choose <<", max_tokens=5, seed=4)], n=3
    )
    (again,) = runner.sample([request], n=3)
    assert [s.text for s in first] == [s.text for s in again]
    assert [s.token_logprobs for s in first] == [s.token_logprobs for s in again]
    assert [s.text for s in first] != [s.text for s in other_seed]
    for s in first:
        assert s.completion_tokens == len(s.token_logprobs)
        assert 1 <= s.completion_tokens <= 5
        assert all(lp <= 0 for lp in s.token_logprobs)
        assert s.finish_reason in {"stop", "length"}
        assert s.prompt_tokens == len(runner.tokenizer("You choose <<")["input_ids"])


def test_greedy_sampling_takes_the_argmax(runner, reference):
    tok, model = reference
    ids = tok("You choose <<")["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1], dim=-1)
    best = int(logp.argmax())
    (greedy,) = runner.sample([SampleRequest("You choose <<", max_tokens=1, temperature=0)])
    assert greedy[0].text == tok.decode([best])
    assert greedy[0].token_logprobs == pytest.approx([float(logp[best])], abs=1e-5)
    assert greedy[0].finish_reason == "length"


def test_the_greedy_flag_says_whether_each_token_was_the_top_choice(runner):
    best = runner.sample([SampleRequest("You choose <<", max_tokens=1, temperature=0)])[0][0]
    candidates = ["A", "B", "C", "D", "1", "2", " is"]
    _, n_cont = continuation_split(runner.tokenizer, "You choose <<", best.text)
    if n_cont == 1 and best.text not in candidates:  # a byte piece may not read back as itself
        candidates.append(best.text)
    results = runner.score([ScoreRequest("You choose <<", c) for c in candidates])
    assert [r.greedy for r in results] == [c == best.text for c in candidates]


def test_chat_uses_the_template(runner):
    (chat,) = runner.sample([SampleRequest("Pick A or B.", max_tokens=3, seed=1, chat=True)])
    templated = "user: Pick A or B.\nassistant:"
    assert chat[0].prompt_tokens == len(runner.tokenizer(templated)["input_ids"])


def test_capabilities_are_enforced(tiny_llama, tmp_path):
    class ScoreOnly(HFRunner):
        name = "score-only"
        capabilities = frozenset({"score"})

    with ScoreOnly(str(tiny_llama)) as r:
        with pytest.raises(CapabilityError, match="the score-only runner cannot sample"):
            r.sample([SampleRequest("x")])
        require(r, "score")
    with pytest.raises(ValueError, match="unknown capability"):
        require(HFRunner, "fly")
    require(HFRunner, "chat")  # a class says what runners of its kind can do


def test_a_tokenizer_without_chat_template_cannot_chat(tiny_llama, tmp_path):
    import shutil

    folder = tmp_path / "base-model"
    shutil.copytree(tiny_llama, folder)
    for name in ("chat_template.jinja", "tokenizer_config.json"):
        path = folder / name
        if name == "chat_template.jinja":
            path.unlink(missing_ok=True)
        else:
            path.write_text(path.read_text().replace('"chat_template"', '"unused_template"'))
    with HFRunner(str(folder)) as base:
        assert "chat" not in base.capabilities
        with pytest.raises(CapabilityError, match="cannot chat"):
            base.sample([SampleRequest("Pick A or B.", chat=True)])


def test_both_split_rules_agree_and_a_first_token_is_refused(runner):
    from copy import deepcopy

    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    class WithoutOffsets:
        """The same tokenizer seen as one without offset mappings (a slow tokenizer)."""

        is_fast = False

        def __call__(self, text):
            return runner.tokenizer(text)

    for r in REQUESTS:
        assert continuation_split(WithoutOffsets(), r.context, r.continuation) == (
            continuation_split(runner.tokenizer, r.context, r.continuation)
        )
    backend = deepcopy(runner.tokenizer.backend_tokenizer)
    backend.post_processor = TemplateProcessing(single="$A", special_tokens=[])
    no_bos = PreTrainedTokenizerFast(tokenizer_object=backend)
    with pytest.raises(ValueError, match="starts the text"):
        continuation_split(no_bos, "", "A>>")
    ids, n_cont = continuation_split(no_bos, "You choose <<", "A>>")
    assert ids[0] != runner.tokenizer.bos_token_id and n_cont == 2


def test_importing_the_runners_loads_no_heavy_sdk():
    import subprocess
    import sys

    code = (
        "import sys, benchmark.runners, benchmark.runners.hf, benchmark.runners.vllm, "
        "benchmark.runners.openai, benchmark.runners.anthropic, benchmark.runners.options; "
        "print(sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
