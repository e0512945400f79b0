"""What one saved answer costs the database, pinned so that it cannot creep back.

These tests run in autocommit (``transaction=True``), as the server does. An answer is
two statements: the session's SELECT (with its study and task version, the spec left
out) and the response's INSERT. The unique constraints, not a lock, keep one row per
item and per idempotency key; the races below check that they do.
"""

import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from participants import services
from participants.models import Response, Session
from tests.participants.test_services import ready
from tests.participants.test_views import browser, config_of, post_json, to_task  # noqa: F401


def statements(queries) -> list[str]:
    return [q["sql"].split()[0] for q in queries.captured_queries]


def answer(client, token, item, choice, key):
    body = {"item_key": item, "answer": choice, "idempotency_key": key, "rt_ms": 812.5}
    return post_json(client, f"/s/p/{token}/answer", body)


@pytest.mark.django_db(transaction=True)
def test_an_answer_is_one_select_and_one_insert(q_version, make_study, browser):  # noqa: F811
    token, task = to_task(browser, make_study(q_version))
    first, second = config_of(task)["order"][:2]
    with CaptureQueriesContext(connection) as saving:
        saved = answer(browser, token, first, "3", "k1")
    assert saved.status_code == 201 and saved.json()["answer"] == "3"
    assert statements(saving) == ["SELECT", "INSERT"]
    select = saving.captured_queries[0]["sql"]
    assert 'FROM "participants_session"' in select and '"benchmark_taskversion"' in select
    assert '."spec"' not in select  # the task's spec is read once per process
    # A retry of the same answer: the INSERT conflicts and the stored row is read back.
    with CaptureQueriesContext(connection) as retry:
        again = answer(browser, token, first, "3", "k1")
    assert again.status_code == 200 and again.json()["answer"] == "3"
    assert statements(retry) == ["SELECT", "INSERT", "SELECT"]
    # A stale tab answering the same item under a new key gets the first answer back.
    stale = answer(browser, token, first, "5", "k2")
    assert stale.status_code == 200 and stale.json()["answer"] == "3"
    # A refused answer costs only the session's SELECT and stores nothing.
    with CaptureQueriesContext(connection) as refused:
        bad = answer(browser, token, second, "9", "k3")
    assert bad.status_code == 400 and bad.json()["error"] == "bad_answer"
    assert statements(refused) == ["SELECT"]
    stored = Response.objects.get()
    assert (stored.item_key, stored.answer, stored.idempotency_key) == (first, "3", "k1")
    assert (stored.position, stored.rt_ms, stored.feedback, stored.telemetry) == (0, 812.5, {}, {})
    assert stored.server_ts is not None and stored.server_ts.tzinfo is not None


@pytest.mark.django_db(transaction=True)
def test_a_sequential_answer_also_counts_the_answers_before_it(
    bandit_version,
    make_study,
    browser,  # noqa: F811
):
    token, _ = to_task(browser, make_study(bandit_version))
    with CaptureQueriesContext(connection) as saving:
        saved = answer(browser, token, "t1", "F", "k1")
    assert saved.status_code == 201 and set(saved.json()["feedback"]) == {"reward", "outcome"}
    assert statements(saving) == ["SELECT", "SELECT", "INSERT"]
    assert "COUNT(*)" in saving.captured_queries[1]["sql"]
    # An answered trial sent again from a stale tab is its stored answer, not out of order.
    stale = answer(browser, token, "t1", "J", "k2")
    assert stale.status_code == 200 and stale.json()["answer"] == "F"
    skipped = answer(browser, token, "t3", "F", "k3")
    assert skipped.status_code == 409 and skipped.json()["error"] == "out_of_order"


def race(calls):
    """Run each call in its own thread, all released at once; returns results or errors."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(n, call):
        try:
            barrier.wait(timeout=30)
            results[n] = call()
        except services.ParticipationError as exc:
            results[n] = exc.code
        except Exception as exc:  # a crash in a thread must fail the test, not vanish
            results[n] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_the_same_item_racing_in_from_many_tabs_is_stored_once(q_version, make_study):
    session = ready(make_study(q_version))
    item = session.trial_order[0]
    calls = [
        lambda n=n: services.record_response(
            session=session, item_key=item, answer=str(1 + n % 5), idempotency_key=f"k{n}"
        )
        for n in range(12)
    ]
    results = race(calls)
    assert all(isinstance(r, tuple) for r in results), results
    stored = Response.objects.get(session=session)
    assert sum(created for _, created in results) == 1
    assert {(r.pk, r.answer) for r, _ in results} == {(stored.pk, stored.answer)}


@pytest.mark.django_db(transaction=True)
def test_sequential_trials_racing_are_stored_in_order_or_refused(bandit_version, make_study):
    session = ready(make_study(bandit_version))
    choices = "FFJJFJ"
    for _round in range(len(choices)):
        race(
            [
                lambda n=n: services.record_response(
                    session=session,
                    item_key=f"t{n + 1}",
                    answer=choices[n],
                    idempotency_key=f"k{n}",
                )
                for n in range(len(choices))
            ]
        )
    rows = list(Response.objects.filter(session=session).order_by("position"))
    assert [r.position for r in rows] == list(range(len(choices)))
    # Each row was inserted after the one before it (ids come from one sequence).
    assert [r.pk for r in rows] == sorted(r.pk for r in rows)
    assert "".join(r.answer for r in rows) == choices


@pytest.mark.django_db(transaction=True)
def test_an_answer_to_a_session_withdrawn_meanwhile_is_refused(q_version, make_study):
    session = ready(make_study(q_version))
    loaded = type(session).objects.select_related("study__task_version").get(pk=session.pk)
    services.withdraw(session=session)
    with pytest.raises(services.ParticipationError) as info:
        services.record_response(
            session=loaded, item_key=loaded.trial_order[0], answer="1", idempotency_key="k"
        )
    assert info.value.code == "withdrawn"
    assert Response.objects.count() == 0


def test_the_one_query_session_loader_gives_what_the_orm_gives(q_version, make_study):
    from participants.queries import session_by_token

    study = make_study(q_version, conditions=["A"], quotas={"A": 5}, ask_demographics=True)
    session = ready(study)
    services.save_demographics(session=session, data={"age": 30, "gender": ""})
    loaded = session_by_token(session.token)
    orm = Session.objects.select_related("study__task_version").get(pk=session.pk)
    for ours, theirs in [
        (loaded, orm),
        (loaded.study, orm.study),
        (loaded.study.task_version, orm.study.task_version),
    ]:
        for field in type(theirs)._meta.concrete_fields:
            if field.attname == "spec":
                continue
            assert getattr(ours, field.attname) == getattr(theirs, field.attname), field.attname
    assert loaded.demographics == {"age": 30} and loaded.trial_order == orm.trial_order
    assert loaded.consented.tzinfo is not None and loaded.study.ask_demographics is True
    # The spec is left out of the query and read on demand, like any deferred field.
    version = loaded.study.task_version
    assert version.get_deferred_fields() == {"spec"}
    assert version.spec == q_version.spec
    assert session_by_token("no-such-token") is None
