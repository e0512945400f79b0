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
def smollm2_conversion(tmp_path_factory):
    """The bundled SmolLM2-135M-Instruct converted once per session as `make run` does it.

    Returns the folder, its revision, the lines the conversion said and what it wrote to
    stderr (slow: ~1 min of CPU).
    """
    import contextlib
    import io
    from types import SimpleNamespace

    from benchmark.local_models import prepare_smollm2

    said, err = [], io.StringIO()
    with contextlib.redirect_stderr(err):
        folder, revision = prepare_smollm2(
            tmp_path_factory.mktemp("smollm2") / "smollm2", say=said.append
        )
    return SimpleNamespace(folder=folder, revision=revision, said=said, stderr=err.getvalue())


@pytest.fixture(scope="session")
def smollm2_folder(smollm2_conversion):
    """The folder of the converted SmolLM2 (see `smollm2_conversion`)."""
    return smollm2_conversion.folder
