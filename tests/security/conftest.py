"""Fixtures of the security suite: users with chosen permissions, a small task, a canary."""

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache

from benchmark.services.tasks import load_tasks
from tests.test_specs import GOOD

# A value no page, log, export or outgoing request may ever carry.
CANARY = "canary-7f3d91c2e4b84a0c9d1e"


@pytest.fixture(autouse=True)
def _fresh_counters():
    """Rate limits and lockouts count in the cache; each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_user(db):
    """A user with the given flags and permissions (``app.codename`` strings)."""

    def make(name: str, *, staff: bool = False, superuser: bool = False, perms=()):
        if superuser:
            return User.objects.create_superuser(name, f"{name}@example.org", "pw-for-tests-1")
        user = User.objects.create_user(name, f"{name}@example.org", "pw-for-tests-1")
        user.is_staff = staff
        user.save()
        for perm in perms:
            app, _, codename = perm.partition(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app, codename=codename)
            )
        return User.objects.get(pk=user.pk)  # fresh permission cache

    return make


@pytest.fixture
def mini_version(db, tmp_path):
    """A two-item questionnaire version."""
    path = tmp_path / "mini-q.yaml"
    path.write_text(GOOD)
    return load_tasks([path])[0].version


# The participant suite's tasks and studies.
from tests.participants.conftest import (  # noqa: E402, F401
    bandit_version,
    choice_version,
    make_study,
    q_version,
)
