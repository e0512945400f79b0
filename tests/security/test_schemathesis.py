"""The API against its own OpenAPI schema: generated requests never give a 5xx or a reply
that breaks the schema (schemathesis, through the WSGI app, as a superuser)."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode, checks

from benchmark.models import ModelEndpoint, Provider
from benchmark.services.runs import queue_run
from config.wsgi import application

EXAMPLES = 10
# Checked: no 5xx, every status, content type and body as the schema documents them.
# Not checked: "accepts invalid authentication" (every request carries a valid token; the
# matrix in test_authorization checks refusals), "schema-violating request accepted" (DRF
# ignores a repeated or unknown query parameter instead of refusing it: lenient, not a
# violation) and "schema-valid request rejected" (a well-typed id of an object that does
# not exist is a 400 from the filter, as it should be).
EXCLUDED = [checks.ignored_auth, checks.negative_data_rejection, checks.positive_data_acceptance]


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
    loaded.auth_header = {"Authorization": f"Token {token.key}"}
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
            case.call_and_validate(headers=api_schema.auth_header, excluded_checks=EXCLUDED)

        try:
            check()
        except Unsatisfiable:
            # An operation with nothing to get wrong (no parameters, no body) has no
            # negative case.
            assert mode == GenerationMode.NEGATIVE
