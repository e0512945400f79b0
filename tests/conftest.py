"""Shared fixtures; tests run on PostgreSQL when DATABASE_URL says so (scripts/run_tests.py)."""

import pytest
from django.contrib.auth import get_user_model


@pytest.fixture
def superuser(db):
    """A superuser who can see everything in the admin and the API."""
    return get_user_model().objects.create_superuser("root", "root@example.org", "pw-for-tests-1")


@pytest.fixture
def admin_client(client, superuser):
    """A test client logged in as the superuser."""
    client.force_login(superuser)
    return client


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """A random 2-layer Llama with a tokenizer trained on the fly, saved like a real model.

    Everything later loads it through `from_pretrained(path, local_files_only=True)`,
    the same code path as a downloaded model.
    """
    from tests.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def smollm2_folder(tmp_path_factory):
    """The bundled SmolLM2-135M-Instruct converted as `make run` converts it (slow: ~1 min)."""
    from benchmark.local_models import prepare_smollm2

    folder, _ = prepare_smollm2(tmp_path_factory.mktemp("smollm2") / "smollm2")
    return folder
