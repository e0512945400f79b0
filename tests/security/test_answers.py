"""Items 2 and 3: no client value breaks a session, an export or the database; bounded telemetry."""

import json

import pytest
from django.test import Client

from participants.models import Response, Session, SessionState
from tests.participants.test_views import csrf, to_task

# The embedded mode stores answers in SQLite: these run there too.
pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def answer_raw(client, token, raw: bytes):
    return client.post(
        f"/s/p/{token}/answer", raw, content_type="application/json", HTTP_X_CSRFTOKEN=csrf(client)
    )


def good(item_key, key="k1", **extra):
    return {"item_key": item_key, "answer": "3", "idempotency_key": key, "rt_ms": 900.5, **extra}


@pytest.fixture
def running(q_version, make_study):
    client = Client()
    token, page = to_task(client, make_study(q_version))
    assert page.status_code == 200
    return client, token, Session.objects.get(token=token)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"item_key": "q1", "answer": "3", "idempotency_key": "a", "rt_ms": Infinity}', "rt_ms"),
        (b'{"item_key": "q1", "answer": "3", "idempotency_key": "a", "rt_ms": NaN}', "rt_ms"),
        (b'{"item_key": "q1", "answer": "3", "idempotency_key": "a", "rt_ms": 1e400}', "rt_ms"),
        (b'{"item_key": "q1", "answer": "3", "idempotency_key": "a", "rt_ms": -1}', "rt_ms"),
        (b'{"item_key": "q1", "answer": "3", "idempotency_key": "a", "rt_ms": "fast"}', "rt_ms"),
        (b'{"item_key": "q1", "answer": "3", "idempotency_key": "a\\u0000"}', "NUL"),
        (b'{"item_key": "q1\\ud800", "answer": "3", "idempotency_key": "a"}', "surrogate"),
        (b'{"item_key": "q1", "answer": "3\\u0000", "idempotency_key": "a"}', "answer"),
        (b'{"answer": "3", "idempotency_key": "a"}', "item_key must be"),
        (b'{"item_key": "q1", "answer": 3, "idempotency_key": "a"}', "answer must be"),
        (
            b'{"item_key": "q1", "answer": "3", "idempotency_key": "a", '
            b'"telemetry": {"paste": "many"}}',
            "telemetry.paste",
        ),
        (
            b'{"item_key": "q1", "answer": "3", "idempotency_key": "a", '
            b'"telemetry": {"blur": NaN}}',
            "telemetry.blur",
        ),
        (
            b'{"item_key": "q1", "answer": "3", "idempotency_key": "a", '
            b'"telemetry": {"viewport": [1, 2, 3]}}',
            "telemetry.viewport",
        ),
        (b"[" * 200_000 + b"]" * 200_000, "bytes; at most"),
        (b"[" * 4000 + b"]" * 4000, "nested"),
        (b'{"a": ' * 10 + b"1" + b"}" * 10, "nested"),
        (b"\xff\xfe{", "UTF-8"),
        (b"[1, 2]", "JSON object"),
    ],
)
def test_a_hostile_answer_body_gets_a_400_naming_the_problem(running, raw, message):
    client, token, _session = running
    refused = answer_raw(client, token, raw)
    assert refused.status_code == 400
    body = refused.json()
    assert body["error"] == "bad_body" and message in body["message"]
    assert not Response.objects.exists()
    # The session goes on as if nothing happened.
    saved = answer_raw(client, token, json.dumps(good("q1")).encode())
    assert saved.status_code == 201


def test_telemetry_is_typed_bounded_and_unknown_keys_are_dropped(running):
    client, token, _session = running
    telemetry = {
        "webdriver": False,
        "blur": 2,
        "paste": 0,
        "viewport": [390, 844],
        "junk": "x" * 4000,
        "nested": {"a": [1, 2, 3]},
    }
    saved = answer_raw(client, token, json.dumps(good("q1", telemetry=telemetry)).encode())
    assert saved.status_code == 201
    stored = Response.objects.get()
    assert stored.telemetry == {"webdriver": False, "blur": 2, "paste": 0, "viewport": [390, 844]}
    assert stored.rt_ms == 900.5


def test_ten_answers_cannot_store_megabytes_of_telemetry(running):
    client, token, session = running
    huge = {"telemetry": {"blur": 1, "x": "y" * 4_800_000}}
    refused = answer_raw(client, token, json.dumps(good("q1", **huge)).encode())
    assert refused.status_code == 400 and "at most 8,192" in refused.json()["message"]
    for n, key in enumerate(session.trial_order):
        padded = good(key, key=f"k{n}", telemetry={"blur": 1, "x": "y" * 6000})
        assert answer_raw(client, token, json.dumps(padded).encode()).status_code == 201
    stored = sum(len(json.dumps(r.telemetry)) for r in Response.objects.all())
    assert stored < 100 * len(session.trial_order)


def test_values_stored_before_the_schema_never_break_complete_or_export(running, admin_client):
    client, token, session = running
    for n, key in enumerate(session.trial_order):
        assert answer_raw(client, token, json.dumps(good(key, key=f"k{n}")).encode()).status_code
    # What the old code let through, written straight to the rows.
    Response.objects.filter(item_key=session.trial_order[0]).update(
        rt_ms=float("inf"), telemetry={"paste": "lots", "blur": [1], "webdriver": "yes"}
    )
    Response.objects.filter(item_key=session.trial_order[1]).update(rt_ms=-5.0)
    done = client.post(f"/s/p/{token}/complete", HTTP_X_CSRFTOKEN=csrf(client))
    assert done.status_code == 200 and done.json()["next"] == f"/s/p/{token}/"
    session.refresh_from_db()
    assert session.state == SessionState.COMPLETED
    assert "DONE123" in client.get(f"/s/p/{token}/").content.decode()
    exported = admin_client.get(f"/admin/participants/study/{session.study_id}/export/json/")
    rows = json.loads(exported.content)["responses"]  # strict JSON: no Infinity
    by_key = {r["item_key"]: r["rt_ms"] for r in rows}
    assert by_key[session.trial_order[0]] is None and by_key[session.trial_order[2]] == 900.5
    jsonl = admin_client.get(f"/admin/participants/study/{session.study_id}/export/psych201/")
    line = json.loads(jsonl.content.decode().splitlines()[0], parse_constant=pytest.fail)
    assert line["RTs"][0] is None


@pytest.mark.parametrize(
    "url",
    ["/s/%00/", "/s/p/%00/", "/s/p/%00/answer", "/s/p/a%00b/consent", "/s/study/%00/"],
)
def test_nul_in_a_url_is_a_404_not_a_500(db, url):
    client = Client(raise_request_exception=False)
    assert client.get(url).status_code in (404, 405)
    assert client.post(url).status_code in (403, 404, 405)
