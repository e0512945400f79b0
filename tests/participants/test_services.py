import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from benchmark import psych201
from benchmark.models import DatasetSource, HumanDataset, Transcript
from benchmark.rendering import Turn, environment_for, render_transcript
from benchmark.services.datasets import content_digest
from benchmark.services.datasets import export_psych201 as export_dataset
from benchmark.specs import spec_from_json
from participants import services
from participants.models import Flag, Response, Session, SessionState, Withdrawal
from participants.recruitment import Arrival


def start(study, pid="p1", **kwargs):
    session, _ = services.start_session(
        study=study, arrival=Arrival(pid, {"PROLIFIC_PID": pid}), **kwargs
    )
    return session


def ready(study, pid="p1", **kwargs):
    session = start(study, pid, **kwargs)
    services.give_consent(session=session)
    services.finish_instructions(session=session)
    session.refresh_from_db()
    return session


def answer_all(session, answers, rt=900.0):
    for n, key in enumerate(session.trial_order):
        services.record_response(
            session=session,
            item_key=key,
            answer=answers[key] if isinstance(answers, dict) else answers,
            idempotency_key=f"k-{key}",
            rt_ms=rt + 37 * n * n,
            client_ts="2026-01-02T03:04:05.678Z",
            telemetry={"webdriver": False, "blur": 0, "paste": 0},
        )


def test_start_stores_a_seeded_order_and_resumes_the_same_session(q_version, make_study):
    study = make_study(q_version)
    session, created = services.start_session(
        study=study, arrival=Arrival("p1", {"PROLIFIC_PID": "p1"}), ip="1.2.3.4", user_agent="UA"
    )
    assert created
    assert sorted(session.trial_order) == ["q1", "q2", "q3"]
    assert len(session.token) >= 40
    assert session.ip_hash and session.ip_hash != "1.2.3.4" and len(session.ip_hash) == 64
    assert session.deadline - session.started < timedelta(minutes=61)
    again, created_again = services.start_session(study=study, arrival=Arrival("p1", {}))
    assert not created_again and again.pk == session.pk and again.token == session.token
    assert Session.objects.filter(study=study).count() == 1
    # The order is a function of study seed and recruitment id: the same on any device.
    assert services.trial_order(study, session.order_seed) == session.trial_order


def test_order_shuffles_per_participant_but_not_for_sequential(
    q_version, bandit_version, make_study
):
    study = make_study(q_version, target_n=20)
    orders = {tuple(start(study, f"p{i}").trial_order) for i in range(12)}
    assert len(orders) > 1
    bandit = make_study(bandit_version)
    assert start(bandit).trial_order == ["t1", "t2", "t3", "t4", "t5", "t6"]


def test_one_participation_per_recruitment_id_is_a_database_constraint(q_version, make_study):
    study = make_study(q_version)
    session = start(study)
    with pytest.raises(IntegrityError):
        Session.objects.create(study=study, recruitment_id="p1", deadline=session.deadline)


def test_study_must_be_open_and_not_full(q_version, make_study):
    study = make_study(q_version, target_n=2)
    start(study, "a")
    start(study, "b")
    with pytest.raises(services.ParticipationError) as info:
        start(study, "c")
    assert info.value.code == "full"
    assert start(study, "a").recruitment_id == "a"  # a returning participant still gets in
    study.status = "paused"
    study.save()
    with pytest.raises(services.ParticipationError) as info:
        start(study, "d")
    assert info.value.code == "paused"


def test_returned_and_timed_out_sessions_free_their_slot(q_version, make_study):
    study = make_study(q_version, target_n=1)
    services.mark_returned(session=start(study, "a"))
    b = start(study, "b")
    Session.objects.filter(pk=b.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert start(study, "c").state == SessionState.STARTED
    assert dict(Session.objects.values_list("recruitment_id", "state")) == {
        "a": "returned",
        "b": "timed_out",
        "c": "started",
    }


def test_conditions_fill_evenly_within_their_quotas(q_version, make_study):
    study = make_study(q_version, target_n=10, conditions=["A", "B"], quotas={"A": 1, "B": 3})
    got = [start(study, f"p{i}").condition for i in range(4)]
    assert got == ["A", "B", "B", "B"]
    with pytest.raises(services.ParticipationError):
        start(study, "p9")


def test_answers_are_saved_once_per_idempotency_key_and_item(q_version, make_study):
    study = make_study(q_version)
    session = ready(study)
    key = session.trial_order[0]
    first, created = services.record_response(
        session=session,
        item_key=key,
        answer="2",
        idempotency_key="abc",
        rt_ms=812.5,
        client_ts="2026-01-02T03:04:05Z",
        telemetry={"blur": 1},
    )
    assert created and first.rt_ms == 812.5 and first.position == 0
    assert first.client_ts.isoformat() == "2026-01-02T03:04:05+00:00"
    again, created = services.record_response(
        session=session, item_key=key, answer="2", idempotency_key="abc"
    )
    assert not created and again.pk == first.pk
    # A stale tab answering the same item again does not change the stored answer.
    other, created = services.record_response(
        session=session, item_key=key, answer="5", idempotency_key="def"
    )
    assert not created and other.pk == first.pk and other.answer == "2"
    assert list(Response.objects.values_list("item_key", "answer")) == [(key, "2")]


@pytest.mark.parametrize(
    ("item", "answer", "code"),
    [("nope", "1", "unknown_item"), ("q1", "9", "bad_answer"), ("q1", "1", "bad_key")],
)
def test_bad_answers_are_refused(q_version, make_study, item, answer, code):
    session = ready(make_study(q_version))
    with pytest.raises(services.ParticipationError) as info:
        services.record_response(
            session=session,
            item_key=item,
            answer=answer,
            idempotency_key="" if code == "bad_key" else "k",
        )
    assert info.value.code == code
    assert Response.objects.count() == 0


def test_answers_before_consent_and_instructions_are_refused(q_version, make_study):
    session = start(make_study(q_version))
    with pytest.raises(services.ParticipationError) as info:
        services.record_response(session=session, item_key="q1", answer="1", idempotency_key="k")
    assert info.value.code == "not_ready"
    assert services.next_step(session) == "consent"


def test_sequential_feedback_comes_from_the_seeded_environment(bandit_version, make_study):
    study = make_study(bandit_version)
    session = ready(study)
    with pytest.raises(services.ParticipationError) as info:
        services.record_response(session=session, item_key="t2", answer="F", idempotency_key="x")
    assert info.value.code == "out_of_order"
    env = environment_for(spec_from_json(bandit_version.spec))
    for n, choice in enumerate("FFJJFJ"):
        response, _ = services.record_response(
            session=session, item_key=f"t{n + 1}", answer=choice, idempotency_key=f"k{n}"
        )
        assert response.feedback == env.feedback(n, choice)
        assert set(response.feedback) == {"reward", "outcome"}
    assert [r.feedback["reward"] for r in session.responses.all()] == [
        env.feedback(n, c)["reward"] for n, c in enumerate("FFJJFJ")
    ]


def test_complete_needs_every_answer_then_flags_patterns(q_version, make_study):
    study = make_study(q_version)
    session = ready(study)
    services.record_response(session=session, item_key="q1", answer="3", idempotency_key="a")
    with pytest.raises(services.ParticipationError) as info:
        services.complete_session(session=session)
    assert info.value.code == "incomplete"
    answer_all(session, {"q1": "3", "q2": "3", "q3": "2"})
    done = services.complete_session(session=session)
    assert done.state == SessionState.COMPLETED and done.finished is not None
    assert list(done.flags.values_list("kind", "detail")) == [
        ("attention_check", {"items": ["q3"]})
    ]
    assert services.complete_session(session=session).state == SessionState.COMPLETED


def test_integrity_flags_for_bots(bandit_version, make_study):
    study = make_study(bandit_version)
    session = ready(study)
    for n in range(6):
        services.record_response(
            session=session,
            item_key=f"t{n + 1}",
            answer="F",
            idempotency_key=f"k{n}",
            rt_ms=100.0,
            telemetry={"webdriver": True, "blur": 1, "paste": 1},
        )
    services.complete_session(session=session)
    kinds = dict(session.flags.values_list("kind", "detail"))
    assert kinds == {
        "webdriver": {},
        "paste": {"count": 6},
        "blur": {"count": 6},
        "too_fast": {"median_rt_ms": 100.0},
        "uniform_rt": {"cv": 0.0},
    }


def test_straight_lining_and_duplicate_devices_are_flagged(tmp_path, make_study):
    from benchmark.services.tasks import load_tasks
    from tests.participants.conftest import QUESTIONNAIRE

    text = QUESTIONNAIRE.replace("slug: part-q", "slug: part-q6").replace(
        "  - {key: q3, text: Choose 4 for this statement., scale: X, attention_check: 4}\n",
        "".join(f"  - {{key: q{i}, text: Item {i}., scale: X}}\n" for i in range(3, 7)),
    )
    (tmp_path / "q6.yaml").write_text(text)
    study = make_study(load_tasks([tmp_path / "q6.yaml"])[0].version)
    first = ready(study, "a", ip="10.0.0.1", user_agent="Firefox")
    second = ready(study, "b", ip="10.0.0.1", user_agent="Firefox")
    ready(study, "c", ip="10.0.0.1", user_agent="Chrome")
    assert list(Flag.objects.values_list("session__recruitment_id", "kind", "detail")) == [
        ("b", "duplicate_device", {"other_sessions": [first.pk]})
    ]
    answer_all(second, "4")
    services.complete_session(session=second)
    assert second.flags.get(kind="straight_lining").detail == {"answer": "4", "items": 6}


def test_time_limit_times_the_session_out(q_version, make_study):
    study = make_study(q_version, time_limit_minutes=1)
    session = ready(study)
    Session.objects.filter(pk=session.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    session.refresh_from_db()
    with pytest.raises(services.ParticipationError) as info:
        services.record_response(session=session, item_key="q1", answer="1", idempotency_key="k")
    assert info.value.code == "timed_out"
    session.refresh_from_db()
    assert session.state == SessionState.TIMED_OUT and session.finished is not None


def test_expire_overdue_sessions_counts(q_version, make_study):
    study = make_study(q_version)
    a, _ = start(study, "a"), start(study, "b")
    Session.objects.filter(pk=a.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert services.expire_overdue_sessions(study=study) == 1
    assert services.study_progress(study=study)["timed_out"] == 1


def test_withdrawal_deletes_answers_and_transcripts_and_keeps_an_anonymous_audit(
    q_version, make_study
):
    study = make_study(q_version)
    keep, leave = ready(study, "keep"), ready(study, "leave")
    for s in (keep, leave):
        answer_all(s, {"q1": "1", "q2": "2", "q3": "4"})
        services.complete_session(session=s)
    dataset, _ = services.make_human_dataset(study=study)
    before = dataset.content_sha256
    assert before == content_digest(dataset)
    audit = services.withdraw(session=leave)
    assert not Session.objects.filter(recruitment_id="leave").exists()
    assert Response.objects.filter(session__recruitment_id="leave").count() == 0
    assert Response.objects.count() == 3
    assert (audit.responses_deleted, audit.transcripts_deleted, audit.state_before) == (
        3,
        1,
        "completed",
    )
    row = Withdrawal.objects.values().get()
    assert "leave" not in json.dumps(row, default=str)
    dataset.refresh_from_db()
    assert dataset.n_participants == 1
    assert "withdrew; derived results are stale" in dataset.provenance
    assert list(dataset.transcripts.values_list("participant", flat=True)) == [
        keep.participant_code
    ]
    # The digest follows the content: old results are recognisably stale, and making the
    # dataset again from the remaining sessions finds this one.
    assert dataset.content_sha256 != before
    assert dataset.content_sha256 == content_digest(dataset)
    assert services.make_human_dataset(study=study) == (dataset, False)


def test_withdrawal_leaves_the_digest_when_another_dataset_already_holds_that_content(
    q_version, make_study
):
    study = make_study(q_version)
    first = ready(study, "first")
    answer_all(first, {"q1": "1", "q2": "2", "q3": "4"})
    services.complete_session(session=first)
    small, _ = services.make_human_dataset(study=study)
    late = ready(study, "late")
    answer_all(late, {"q1": "5", "q2": "5", "q3": "5"})
    services.complete_session(session=late)
    big, created = services.make_human_dataset(study=study)
    assert created and big.n_participants == 2
    old = big.content_sha256
    services.withdraw(session=late)
    big.refresh_from_db()
    assert content_digest(big) == small.content_sha256
    assert big.content_sha256 == old  # unique: the twin keeps it
    assert f"the content now equals dataset {small.slug!r}" in big.provenance


def test_decline_consent_screens_out(q_version, make_study):
    session = start(make_study(q_version))
    services.decline_consent(session=session)
    assert session.state == SessionState.SCREENED_OUT
    assert services.next_step(session) == "screened_out"


def test_demographics_are_kept_without_empty_values(q_version, make_study):
    study = make_study(q_version, ask_demographics=True)
    session = start(study)
    services.give_consent(session=session)
    assert services.next_step(session) == "demographics"
    services.save_demographics(
        session=session, data={"age": 34, "gender": "", "education": "master"}
    )
    assert session.demographics == {"age": 34, "education": "master"}
    assert services.next_step(session) == "instructions"


def test_progress_counts_and_median_duration(q_version, make_study):
    study = make_study(q_version)
    durations = []
    for pid, seconds in (("a", 60), ("b", 120), ("c", 300)):
        s = ready(study, pid)
        answer_all(s, {"q1": "1", "q2": "2", "q3": "4"})
        services.complete_session(session=s)
        Session.objects.filter(pk=s.pk).update(finished=s.started + timedelta(seconds=seconds))
        durations.append(seconds)
    services.mark_returned(session=start(study, "r"))
    start(study, "running")
    assert services.study_progress(study=study) == {
        "started": 5,
        "running": 1,
        "held_not_started": 1,
        "completed": 3,
        "returned": 1,
        "timed_out": 0,
        "screened_out": 0,
        "withdrawn": 0,
        "flagged": 0,
        "median_seconds": 120.0,
    }


def test_exports_and_psych201_match_the_renderer(bandit_version, make_study):
    study = make_study(bandit_version, ask_demographics=True)
    session = start(study)
    services.give_consent(session=session)
    services.save_demographics(session=session, data={"age": 41, "gender": "female"})
    services.finish_instructions(session=session)
    answer_all(session, {f"t{n}": c for n, c in zip(range(1, 7), "FJFJFJ", strict=True)})
    services.complete_session(session=session)
    rows = services.export_rows(study=study)
    assert [(r["item_key"], r["answer"]) for r in rows] == list(
        zip([f"t{n}" for n in range(1, 7)], "FJFJFJ", strict=True)
    )
    assert rows[0]["participant"] == session.participant_code
    assert "p1" not in services.export_csv(study=study)
    header = services.export_csv(study=study).splitlines()[0]
    assert header == ",".join(services.EXPORT_COLUMNS)
    assert json.loads(services.export_json(study=study))["spec_hash"] == bandit_version.spec_hash

    line = json.loads(services.export_psych201(study=study))
    spec = spec_from_json(bandit_version.spec)
    turns = [Turn(r.item_key, r.answer, r.feedback) for r in session.responses.all()]
    expected = render_transcript(spec, turns, profile={"age": 41, "gender": "female"})
    assert line["text"] == expected.text
    assert line["text"].startswith("Interviewer: What is your age?\nInterviewee: 41\n")
    assert line["participant"] == session.participant_code
    assert line["experiment"] == "part-bandit"
    assert line["RTs"] == [r.rt_ms for r in session.responses.all()]
    assert (line["age"], line["gender"]) == (41, "female")
    record = psych201.parse_record(json.dumps(line).encode(), 1)
    assert record.responses == list("FJFJFJ")


def test_make_human_dataset_is_collected_and_idempotent(q_version, make_study):
    study = make_study(q_version)
    with pytest.raises(services.ParticipationError):
        services.make_human_dataset(study=study)
    for pid in ("a", "b"):
        s = ready(study, pid)
        answer_all(s, {"q1": "5", "q2": "1", "q3": "4"})
        services.complete_session(session=s)
    ready(study, "unfinished")
    dataset, created = services.make_human_dataset(study=study)
    assert created and dataset.source == DatasetSource.COLLECTED
    assert dataset.task == q_version.task and dataset.n_participants == 2
    out = io.StringIO()
    export_dataset(dataset=dataset, out=out)
    assert dataset.content_sha256 == hashlib.sha256(out.getvalue().encode()).hexdigest()
    assert dataset.slug == f"{study.slug}-{dataset.content_sha256[:8]}"
    t = Transcript.objects.filter(dataset=dataset).order_by("line").first()
    assert t.answers == {"q1": "5", "q2": "1", "q3": "4"}
    assert t.responses == [
        t.answers[k] for k in Session.objects.get(recruitment_id="a").trial_order
    ]
    again, created = services.make_human_dataset(study=study)
    assert not created and again.pk == dataset.pk and HumanDataset.objects.count() == 1
    # The benchmark side exports the collected dataset's texts exactly as the study does.
    jsonl = services.export_psych201(study=study)
    assert [json.loads(x)["text"] for x in out.getvalue().splitlines()] == [
        json.loads(x)["text"] for x in jsonl.splitlines()
    ]


def test_answers_identical_to_a_model_run_are_flagged(tmp_path, make_study):
    from benchmark.models import ModelEndpoint, ModelResponse, ModelRun, WorkUnit
    from benchmark.services.tasks import load_tasks
    from tests.participants.conftest import QUESTIONNAIRE

    text = QUESTIONNAIRE.replace("slug: part-q", "slug: part-q5").replace(
        "  - {key: q3, text: Choose 4 for this statement., scale: X, attention_check: 4}\n",
        "".join(f"  - {{key: q{i}, text: Item {i}., scale: X}}\n" for i in range(3, 6)),
    )
    (tmp_path / "q5.yaml").write_text(text)
    version = load_tasks([tmp_path / "q5.yaml"])[0].version
    endpoint = ModelEndpoint.objects.create(name="m", provider="openai", model="m-1")
    model_answers = {"q1": "5", "q2": "1", "q3": "4", "q4": "2", "q5": "3"}
    runs = []
    for given in (model_answers, {**model_answers, "q5": "1"}):
        run = ModelRun.objects.create(
            endpoint=endpoint,
            task_version=version,
            mode="participant",
            scoring_mode="sampled",
            prompt_hash="h",
        )
        unit = WorkUnit.objects.create(run=run, index=0, payload=[], expected=5)
        ModelResponse.objects.bulk_create(
            ModelResponse(run=run, unit=unit, item_key=k, scoring_mode="sampled", answer=a)
            for k, a in given.items()
        )
        runs.append(run)
    study = make_study(version)
    copier, human = ready(study, "copier"), ready(study, "human")
    answer_all(copier, model_answers)
    answer_all(human, {**model_answers, "q5": "5", "q4": "5"})
    for s in (copier, human):
        services.complete_session(session=s)
    assert list(Flag.objects.values_list("session__recruitment_id", "kind", "detail")) == [
        ("copier", "model_match", {"runs": [runs[0].pk]})
    ]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"conditions": "A,B"}, "conditions", "A list of condition names"),
        ({"conditions": ["A", "A"]}, "conditions", "must be unique"),
        ({"conditions": ["A"], "quotas": {"A": 5, "C": 1}}, "quotas", "unknown conditions: ['C']"),
        ({"quotas": {"A": -1}}, "quotas", "whole number"),
        ({"source": "sona", "sona_credit_url": "https://x.org/credit"}, "sona_credit_url", "{id}"),
        ({"completion_code": ""}, "completion_code", "completion code"),
        ({"quotas": {"age=30": 5}, "ask_demographics": True}, "quotas", "must use one of"),
        ({"quotas": {"gender=male": 5}}, "quotas", "need 'ask demographics'"),
    ],
)
def test_study_settings_are_validated(q_version, make_study, fields, field, message):
    from django.core.exceptions import ValidationError

    study = make_study(q_version)
    for name, value in fields.items():
        setattr(study, name, value)
    with pytest.raises(ValidationError) as info:
        study.full_clean()
    assert message in " ".join(info.value.message_dict[field])
    make_study(q_version, slug="fine", conditions=["A"], quotas={"A": 3}).full_clean()


def test_full_demographic_cell_screens_out(q_version, make_study):
    study = make_study(q_version, ask_demographics=True, quotas={"gender=female": 1})
    study.full_clean()
    first, second, third = (start(study, pid) for pid in ("f1", "f2", "m1"))
    for s in (first, second, third):
        services.give_consent(session=s)
    services.save_demographics(session=first, data={"gender": "female", "age": 30})
    services.save_demographics(session=second, data={"gender": "female"})
    services.save_demographics(session=third, data={"gender": "male"})
    states = dict(Session.objects.values_list("recruitment_id", "state"))
    assert states == {"f1": "started", "f2": "screened_out", "m1": "started"}
    second.refresh_from_db()
    assert second.demographics == {}  # nothing kept from a screened-out participant
    services.mark_returned(session=first)  # a returned slot opens the cell again
    fourth = start(study, "f3")
    services.give_consent(session=fourth)
    assert services.save_demographics(session=fourth, data={"gender": "female"}).state == "started"
