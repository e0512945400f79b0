"""Runner registry: provider name → runner class, imported only when used."""

import importlib

from benchmark.runners.base import Runner

RUNNERS = {
    "hf": "benchmark.runners.hf.HFRunner",
    "vllm": "benchmark.runners.vllm.VLLMRunner",
    "openai": "benchmark.runners.openai.OpenAIRunner",
    "anthropic": "benchmark.runners.anthropic.AnthropicRunner",
}


def runner_class(provider: str) -> type[Runner]:
    """The runner class of a provider (its module imports no SDK at import time).

    Raises:
        ValueError: unknown provider.
    """
    try:
        path = RUNNERS[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; known: {sorted(RUNNERS)}") from None
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def get_runner(provider: str, **settings) -> Runner:
    """Build the runner of a provider with its settings."""
    return runner_class(provider)(**settings)
