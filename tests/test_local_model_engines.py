"""The bundled SmolLM2 folder in every engine: hf, vLLM offline, and vLLM's own server.

The folder is what `make run` writes; a folder vLLM cannot read correctly (embeddings
loaded as zeros) gave every option the same probability. Slow: a real model and a
vLLM server start.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from benchmark.rendering import render_prompt, spec_items
from benchmark.runners import get_runner
from benchmark.runners.options import option_distribution
from benchmark.services.tasks import expand_spec
from benchmark.specs import load_spec_file

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

IPIP = Path(__file__).resolve().parents[1] / "benchmark/tasks/personality/ipip-big5-50.yaml"
CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}


def ipip_prompts() -> list[tuple[str, list[str]]]:
    """The first 10 IPIP items (two per scale), as a participant run renders them."""
    spec = expand_spec(load_spec_file(IPIP), str(IPIP))
    items = spec_items(spec)
    return [
        (render_prompt(spec, [], i.key, items=items).text, [o.key for o in i.options])
        for i in items[:10]
    ]


def distributions(runner, prompts):
    return [option_distribution(runner, text, options).probs for text, options in prompts]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def hf_reference(smollm2_folder):
    with get_runner("hf", model_path=str(smollm2_folder)) as runner:
        return distributions(runner, ipip_prompts())


def test_the_folder_is_written_as_save_pretrained_writes_it(smollm2_folder):
    from safetensors import safe_open

    config = json.loads((smollm2_folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    with safe_open(smollm2_folder / "model.safetensors", "np") as f:
        keys = set(f.keys())
    assert "model.embed_tokens.weight" in keys
    assert len(keys) == 272  # 30 layers × 9 + embeddings + final norm; the head is tied


def test_hf_distributions_are_not_flat(hf_reference):
    # The first item of each scale: a real model prefers some ratings.
    spreads = [max(d.values()) - min(d.values()) for d in hf_reference]
    assert min(spreads) > 0.02


def test_vllm_offline_gives_the_hf_distributions(smollm2_folder, hf_reference):
    for key, value in CPU_ENV.items():
        os.environ.setdefault(key, value)
    runner = get_runner("vllm", model_path=str(smollm2_folder), dtype="float32", max_model_len=512)
    try:
        got = distributions(runner, ipip_prompts())
    finally:
        runner.close()
    for ours, theirs in zip(got, hf_reference, strict=True):
        assert ours == pytest.approx(theirs, abs=1e-3)


def test_openai_runner_against_vllms_server_gives_the_hf_distributions(
    smollm2_folder, hf_reference, tmp_path
):
    port = free_port()
    log = (tmp_path / "vllm-server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(smollm2_folder), "--served-model-name", "smollm2",
            "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
            "--max-model-len", "512", "--enforce-eager",
        ],
        env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "vllm-server.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail("vLLM's server did not start within 10 minutes")
        url = f"http://127.0.0.1:{port}"
        with get_runner("openai", base_url=url, model="smollm2", timeout=300) as runner:
            got = distributions(runner, ipip_prompts())
    finally:
        server.terminate()
        server.wait(60)
        log.close()
    for ours, theirs in zip(got, hf_reference, strict=True):
        assert ours == pytest.approx(theirs, abs=1e-3)
