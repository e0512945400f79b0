"""Many participants starting at once: the last slot is given once, one session per id."""

import threading

import pytest
from django.db import connections

from participants import services
from participants.models import Response, Session
from participants.recruitment import Arrival

RACERS = 50


def race(study, ids):
    """Start a session for each id from its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(ids))
    results, errors = [None] * len(ids), []

    def run(n, pid):
        try:
            barrier.wait(timeout=30)
            session, created = services.start_session(study=study, arrival=Arrival(pid, {}))
            results[n] = (session.token, created)
        except services.ParticipationError as exc:
            results[n] = exc.code
        except Exception as exc:  # a crash in a thread must fail the test, not vanish
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n, pid)) for n, pid in enumerate(ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    return results


@pytest.mark.django_db(transaction=True)
def test_last_slot_is_given_once_under_concurrent_starts(q_version, make_study):
    racers = RACERS
    study = make_study(q_version, target_n=10, conditions=["A", "B"], quotas={"A": 4, "B": 6})
    results = race(study, [f"p{n}" for n in range(racers)])
    started = [r for r in results if isinstance(r, tuple)]
    assert len(started) == 10 and all(created for _, created in started)
    assert results.count("full") == racers - 10
    assert Session.objects.filter(study=study).count() == 10
    by_condition = sorted(Session.objects.values_list("condition", flat=True))
    assert by_condition == ["A"] * 4 + ["B"] * 6


@pytest.mark.django_db(transaction=True)
def test_same_recruitment_id_racing_gets_one_session(q_version, make_study):
    study = make_study(q_version, target_n=100)
    results = race(study, ["same-person"] * 20)
    tokens = {token for token, _ in results}
    assert len(tokens) == 1
    assert sum(created for _, created in results) == 1
    assert Session.objects.filter(study=study).count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_retries_of_one_answer_store_one_row(q_version, make_study):
    study = make_study(q_version)
    session, _ = services.start_session(study=study, arrival=Arrival("p", {}))
    services.give_consent(session=session)
    services.finish_instructions(session=session)
    barrier = threading.Barrier(10)
    results, errors = [], []

    def post(n):
        try:
            barrier.wait(timeout=30)
            response, created = services.record_response(
                session=session, item_key="q1", answer="3", idempotency_key="retry-me"
            )
            results.append((response.pk, created))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len({pk for pk, _ in results}) == 1 and sum(c for _, c in results) == 1
    assert list(Response.objects.values_list("item_key", "answer", "idempotency_key")) == [
        ("q1", "3", "retry-me")
    ]
