"""The API against its own OpenAPI schema: generated requests never give a 5xx or a reply
that breaks the schema (schemathesis, through the WSGI app, as a superuser)."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from benchmark.models import ModelEndpoint, Provider
from benchmark.services.runs import queue_run
from config.wsgi import application

EXAMPLES = 10
# A well-formed POST can still name objects that do not exist (a run's endpoint, a report's
# runs) or cannot be combined (runs of different task versions): a 400 that names the field
# or says why, checked below. Reads (GET) must accept every schema-valid request.


@pytest.fixture
def keep_connection():
    """Serve the WSGI app inside the test's transaction, as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, keep_connection, superuser, mini_version):
    endpoint = ModelEndpoint.objects.create(
        name="api-model",
        provider=Provider.OPENAI,
        model="m",
        settings={"base_url": "http://127.0.0.1:9", "capabilities": ["sample", "chat"]},
    )
    queue_run(endpoint=endpoint, task_version=mini_version, scoring_mode="sampled", samples=2)
    token = Token.objects.create(user=superuser)
    loaded = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json",
        application,
        headers={"Authorization": f"Token {token.key}"},
    )

    # Declared as the schema's auth, so that schemathesis knows the token is real and
    # probes each operation without it and with a made-up one (401/403 expected).
    @loaded.auth()
    class SuperuserToken:
        def get(self, case, ctx):
            return token.key

        def set(self, case, data, ctx):
            case.headers = {**(case.headers or {}), "Authorization": f"Token {data}"}

    return loaded


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema(api_schema, mode):
    # One hypothesis run per operation (schemathesis' pytest plugin does not run under
    # pytest 9, so the operations are walked here).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case):
            # Every check, including the three about refusals: no auth or a made-up token
            # is refused, a request outside the schema is a 4xx, one inside it is not.
            if case.method == "POST":
                response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
                if response.status_code == 400:
                    # Field name (or "detail") → non-empty message(s).
                    reasons = response.json()
                    assert isinstance(reasons, dict) and reasons, reasons
                    assert all(reasons.values()), reasons
            else:
                case.call_and_validate()

        try:
            check()
        except Unsatisfiable:
            # An operation with nothing to get wrong (no parameters, no body) has no
            # negative case.
            assert mode == GenerationMode.NEGATIVE
