"""Participant verbs: start, consent, answer, complete, withdraw, time out; exports.

Views and the admin call these; each runs in one transaction and returns model
objects. Nothing here trusts the client with an outcome: feedback of sequential
tasks is computed from the task's seeded environment when an answer is saved.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import secrets
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from benchmark import psych201
from benchmark.models import DatasetSource, HumanDataset, ModelResponse, RunMode, Transcript
from benchmark.rendering import Turn, environment_for, render_transcript, spec_items
from benchmark.services.datasets import content_digest
from benchmark.specs import spec_from_json
from participants.models import (
    ACTIVE_STATES,
    Flag,
    FlagKind,
    Response,
    Session,
    SessionState,
    Study,
    StudyStatus,
    Withdrawal,
)
from participants.recruitment import Arrival

PROFILE_KEYS = ("age", "gender", "nationality", "education", "diagnosis")
# Thresholds for the integrity flags: deliberately loose, a flag is only a hint.
TOO_FAST_MEDIAN_MS = 250
UNIFORM_RT_CV = 0.05
MIN_ITEMS_FOR_PATTERN = 5
BLUR_LIMIT = 5


class ParticipationError(Exception):
    """A participant action that cannot be done; ``code`` says why (shown as a page)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


# --- the task as trials -------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A task version as the player sees it: its spec and every trial by key."""

    spec: object
    items: list
    trials: dict

    @property
    def kind(self) -> str:
        """The spec's kind."""
        return self.spec.kind


@lru_cache(maxsize=32)
def _plan(spec_hash: str, spec_json: str) -> Plan:
    spec = spec_from_json(json.loads(spec_json))
    items = spec_items(spec)
    trials = {
        item.key: {
            "key": item.key,
            "text": item.text,
            "fields": item.fields,
            "options": [{"key": o.key, "label": o.label or o.key} for o in item.options],
        }
        for item in items
    }
    return Plan(spec=spec, items=items, trials=trials)


def plan_for(study: Study) -> Plan:
    """The (cached) trial plan of a study's task version."""
    version = study.task_version
    return _plan(version.spec_hash, json.dumps(version.spec, sort_keys=True))


@lru_cache(maxsize=32)
def _environment(spec_hash: str, spec_json: str):
    return environment_for(spec_from_json(json.loads(spec_json)))


def trial_order(study: Study, order_seed: int) -> list[str]:
    """Item keys in the order one session sees them: seeded shuffle when the spec asks for it.

    Sequential trials always keep their order (the environment's blocks depend on it).
    """
    plan = plan_for(study)
    keys = [item.key for item in plan.items]
    if plan.kind != "sequential" and getattr(plan.spec, "shuffle", False):
        random.Random(order_seed).shuffle(keys)  # noqa: S311 - reproducible, not secret
    return keys


def feedback_for(study: Study, item_key: str, answer: str) -> dict:
    """Server-side feedback for an answer: the environment's outcome, {} for other kinds."""
    version = study.task_version
    if version.spec["kind"] != "sequential":
        return {}
    env = _environment(version.spec_hash, json.dumps(version.spec, sort_keys=True))
    return env.feedback(int(item_key.removeprefix("t")) - 1, answer)


def _hash(study: Study, value: str) -> str:
    return hashlib.sha256(f"{study.hash_salt}:{value}".encode()).hexdigest() if value else ""


# --- starting and moving through a session -----------------------------------------------


def _pick_condition(study: Study) -> str | None:
    """The least filled condition with room left, "" without conditions, None when full."""
    active = study.sessions.filter(state__in=ACTIVE_STATES)
    if active.count() >= study.target_n:
        return None
    if not study.conditions:
        return ""
    counts = dict(
        active.values_list("condition").annotate(n=Count("pk")).values_list("condition", "n")
    )
    open_ = [
        c for c in study.conditions if counts.get(c, 0) < int(study.quotas.get(c, study.target_n))
    ]
    if not open_:
        return None
    return min(open_, key=lambda c: (counts.get(c, 0), study.conditions.index(c)))


def start_session(
    *, study: Study, arrival: Arrival, ip: str = "", user_agent: str = ""
) -> tuple[Session, bool]:
    """Start a participation, or resume the one this recruitment id already has.

    The study row is locked while the quota is counted, so the last slot is given once
    even under many simultaneous starts; the unique constraint on (study, recruitment
    id) makes a second participation impossible even if two requests race.

    Args:
        study: the study.
        arrival: the participant's platform id and parameters.
        ip: the client's address (stored only as a salted hash).
        user_agent: the client's user agent (stored only as a salted hash).

    Returns:
        The session and whether it was created now.

    Raises:
        ParticipationError: ``closed`` / ``paused`` (study not open), ``full`` (no slot).
    """
    existing = Session.objects.filter(study=study, recruitment_id=arrival.recruitment_id).first()
    if existing is not None:
        return expire_if_overdue(session=existing), False
    try:
        with transaction.atomic():
            study = Study.objects.select_for_update().get(pk=study.pk)
            if study.status != StudyStatus.OPEN:
                raise ParticipationError(study.status, "This study is not taking participants.")
            # Overdue sessions give their slot back before the slots are counted.
            expire_overdue_sessions(study=study)
            condition = _pick_condition(study)
            if condition is None:
                raise ParticipationError("full", "This study has all the participants it needs.")
            # Seeded by study and recruitment id, so the order is reproducible and recorded.
            rng = random.Random(f"{study.seed}:{arrival.recruitment_id}")  # noqa: S311
            order_seed = rng.getrandbits(48)
            now = timezone.now()
            session = Session.objects.create(
                study=study,
                recruitment_id=arrival.recruitment_id,
                recruitment=arrival.params,
                condition=condition,
                order_seed=order_seed,
                trial_order=trial_order(study, order_seed),
                ip_hash=_hash(study, ip),
                ua_hash=_hash(study, user_agent),
                deadline=now + timedelta(minutes=study.time_limit_minutes),
            )
            _flag_duplicate_device(session)
            return session, True
    except IntegrityError:
        # Another request with the same recruitment id won the race: resume that one.
        return Session.objects.get(study=study, recruitment_id=arrival.recruitment_id), False


def _flag_duplicate_device(session: Session) -> None:
    if not session.ip_hash or not session.ua_hash:
        return
    others = list(
        Session.objects.filter(
            study=session.study, ip_hash=session.ip_hash, ua_hash=session.ua_hash
        )
        .exclude(pk=session.pk)
        .values_list("pk", flat=True)[:20]
    )
    if others:
        Flag.objects.create(
            session=session, kind=FlagKind.DUPLICATE_DEVICE, detail={"other_sessions": others}
        )


@transaction.atomic
def expire_if_overdue(*, session: Session, now: datetime | None = None) -> Session:
    """Mark a running session past its deadline as timed out; return it (refreshed)."""
    now = now or timezone.now()
    if session.state == SessionState.STARTED and session.deadline <= now:
        Session.objects.filter(pk=session.pk, state=SessionState.STARTED).update(
            state=SessionState.TIMED_OUT, finished=now
        )
        session.refresh_from_db()
    return session


@transaction.atomic
def expire_overdue_sessions(*, study: Study | None = None) -> int:
    """Time out every running session past its deadline; returns how many."""
    now = timezone.now()
    overdue = Session.objects.filter(state=SessionState.STARTED, deadline__lte=now)
    if study is not None:
        overdue = overdue.filter(study=study)
    return overdue.update(state=SessionState.TIMED_OUT, finished=now)


def _running(session: Session) -> Session:
    session = expire_if_overdue(session=session)
    if session.state != SessionState.STARTED:
        raise ParticipationError(session.state, "This session is over.")
    return session


@transaction.atomic
def give_consent(*, session: Session) -> Session:
    """Record that the participant agreed to the consent text."""
    session = _running(session)
    if session.consented is None:
        session.consented = timezone.now()
        session.save(update_fields=["consented"])
    return session


@transaction.atomic
def decline_consent(*, session: Session) -> Session:
    """The participant did not consent: the session ends as screened out, with no data."""
    session = _running(session)
    session.state = SessionState.SCREENED_OUT
    session.finished = timezone.now()
    session.save(update_fields=["state", "finished"])
    return session


@transaction.atomic
def save_demographics(*, session: Session, data: dict) -> Session:
    """Store the (already validated) demographic answers; empty values are dropped.

    When the participant falls into a demographic quota cell that is already full, the
    session ends as screened out (the study row is locked while the cell is counted).
    """
    session = _running(session)
    study = Study.objects.select_for_update().get(pk=session.study_id)
    demographics = {k: v for k, v in data.items() if v not in (None, "")}
    for cell, limit in study.quotas.items():
        field, _, value = cell.partition("=")
        if not value or str(demographics.get(field, "")) != value:
            continue
        taken = (
            study.sessions.filter(state__in=ACTIVE_STATES, **{f"demographics__{field}": value})
            .exclude(pk=session.pk)
            .count()
        )
        if taken >= int(limit):
            session.state = SessionState.SCREENED_OUT
            session.finished = timezone.now()
            session.save(update_fields=["state", "finished"])
            return session
    session.demographics = demographics
    session.demographics_done = True
    session.save(update_fields=["demographics", "demographics_done"])
    return session


@transaction.atomic
def finish_instructions(*, session: Session) -> Session:
    """The participant has read the instructions; trials start."""
    session = _running(session)
    if session.instructions_done is None:
        session.instructions_done = timezone.now()
        session.save(update_fields=["instructions_done"])
    return session


def next_step(session: Session) -> str:
    """Which page a session is on: consent, demographics, instructions, task, or its end state."""
    if session.state != SessionState.STARTED:
        return session.state
    if session.consented is None:
        return "consent"
    if session.study.ask_demographics and not session.demographics_done:
        return "demographics"
    if session.instructions_done is None:
        return "instructions"
    return "task"


# --- answers ------------------------------------------------------------------------------


def _client_time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.UTC)
    return parsed


def record_response(
    *,
    session: Session,
    item_key: str,
    answer: str,
    idempotency_key: str,
    rt_ms: float | None = None,
    client_ts: str | None = None,
    telemetry: dict | None = None,
) -> tuple[Response, bool]:
    """Save one answer exactly once.

    A repeated POST with the same idempotency key returns the stored row; a second
    answer to an already answered item (a stale tab) returns the first one, unchanged.
    Sequential trials must be answered in order; their feedback is computed here.

    Args:
        session: the participant's session.
        item_key: the item or trial answered.
        answer: the chosen option key.
        idempotency_key: generated by the client once per answer.
        rt_ms: response time from the client's ``performance.now()``.
        client_ts: the client's ISO timestamp of the answer.
        telemetry: client signals (webdriver, blur and paste counts, viewport).

    Returns:
        The stored response and whether it was created by this call.

    Raises:
        ParticipationError: ``unknown_item``, ``bad_answer``, ``out_of_order``,
            ``not_ready`` (task not started yet) or the session's end state.
    """
    if not idempotency_key or len(idempotency_key) > 64:
        raise ParticipationError("bad_key", "An idempotency key of 1-64 characters is required.")
    existing = Response.objects.filter(session=session, idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, False
    session = _running(session)
    if next_step(session) != "task":
        raise ParticipationError("not_ready", "The task has not started yet.")
    plan = plan_for(session.study)
    if item_key not in session.trial_order:
        raise ParticipationError("unknown_item", f"{item_key!r} is not a trial of this session.")
    options = {o["key"] for o in plan.trials[item_key]["options"]}
    if answer not in options:
        raise ParticipationError("bad_answer", f"{answer!r} is not one of {sorted(options)}.")
    position = session.trial_order.index(item_key)
    try:
        with transaction.atomic():
            Session.objects.select_for_update().filter(pk=session.pk).first()
            same_item = Response.objects.filter(session=session, item_key=item_key).first()
            if same_item is not None:
                return same_item, False
            if plan.kind == "sequential" and session.responses.count() != position:
                raise ParticipationError("out_of_order", "Trials must be answered in order.")
            response = Response.objects.create(
                session=session,
                item_key=item_key,
                position=position,
                answer=answer,
                feedback=feedback_for(session.study, item_key, answer),
                idempotency_key=idempotency_key,
                rt_ms=float(rt_ms) if isinstance(rt_ms, int | float) and rt_ms >= 0 else None,
                client_ts=_client_time(client_ts),
                telemetry=telemetry if isinstance(telemetry, dict) else {},
            )
            return response, True
    except IntegrityError:
        # The same answer raced in through a parallel retry; that row is the answer.
        stored = Response.objects.filter(session=session, idempotency_key=idempotency_key).first()
        return stored or Response.objects.get(session=session, item_key=item_key), False


@transaction.atomic
def complete_session(*, session: Session) -> Session:
    """Finish a session whose every trial is answered and record its integrity flags.

    Raises:
        ParticipationError: ``incomplete`` (answers missing), or the session's end state.
    """
    session = Session.objects.select_for_update().get(pk=session.pk)
    if session.state == SessionState.COMPLETED:
        return session
    session = _running(session)
    answered = set(session.responses.values_list("item_key", flat=True))
    missing = [key for key in session.trial_order if key not in answered]
    if missing:
        raise ParticipationError("incomplete", f"{len(missing)} trials are not answered yet.")
    session.state = SessionState.COMPLETED
    session.finished = timezone.now()
    session.save(update_fields=["state", "finished"])
    for kind, detail in assess(session):
        Flag.objects.get_or_create(session=session, kind=kind, defaults={"detail": detail})
    return session


@transaction.atomic
def mark_returned(*, session: Session) -> Session:
    """The platform reports that the participant returned the study (it frees the slot)."""
    if session.state == SessionState.STARTED:
        session.state = SessionState.RETURNED
        session.finished = timezone.now()
        session.save(update_fields=["state", "finished"])
    return session


@transaction.atomic
def withdraw(*, session: Session) -> Withdrawal:
    """Delete a participant's session, answers and any collected transcript of them.

    Only an audit row without personal data stays (study, when, how much was deleted).
    Collected datasets that held the participant lose their transcript, get a note in
    their provenance and a new ``content_sha256`` (the digest of what they now hold), so
    results computed on the old content can be told apart as stale and recomputed.
    """
    session = Session.objects.select_for_update().get(pk=session.pk)
    transcripts = Transcript.objects.filter(
        dataset__source=DatasetSource.COLLECTED, extra__session=session.pk
    ).select_related("dataset")
    datasets = {t.dataset for t in transcripts}
    deleted_transcripts = transcripts.count()
    transcripts.delete()
    for dataset in datasets:
        dataset.n_participants = dataset.transcripts.count()
        note = f"{timezone.now():%Y-%m-%d %H:%M} UTC: a participant withdrew"
        digest = content_digest(dataset)
        twin = HumanDataset.objects.exclude(pk=dataset.pk).filter(content_sha256=digest).first()
        if twin is None:
            # Results computed on the old content carry the old digest: they are stale.
            dataset.content_sha256 = digest
            note += "; derived results are stale."
        else:
            note += f"; derived results are stale; the content now equals dataset {twin.slug!r}."
        dataset.provenance = f"{dataset.provenance}\n{note}".strip()
        dataset.save(update_fields=["n_participants", "provenance", "content_sha256"])
    audit = Withdrawal.objects.create(
        study=session.study,
        started=session.started,
        responses_deleted=session.responses.count(),
        transcripts_deleted=deleted_transcripts,
        state_before=session.state,
    )
    session.delete()
    return audit


# --- integrity ------------------------------------------------------------------------------


def assess(session: Session) -> list[tuple[str, dict]]:
    """Integrity signals of a finished session, as (flag kind, detail) pairs."""
    responses = list(session.responses.order_by("position"))
    plan = plan_for(session.study)
    found: list[tuple[str, dict]] = []
    checks = {
        item.key: item.attention_check
        for item in getattr(plan.spec, "items", [])
        if getattr(item, "attention_check", None) is not None
    }
    failed = [
        r.item_key
        for r in responses
        if r.item_key in checks and r.answer != str(checks[r.item_key])
    ]
    if failed:
        found.append((FlagKind.ATTENTION_CHECK, {"items": failed}))
    telemetry = [r.telemetry for r in responses]
    if any(t.get("webdriver") is True for t in telemetry):
        found.append((FlagKind.WEBDRIVER, {}))
    pastes = sum(int(t.get("paste", 0) or 0) for t in telemetry)
    if pastes:
        found.append((FlagKind.PASTE, {"count": pastes}))
    blurs = sum(int(t.get("blur", 0) or 0) for t in telemetry)
    if blurs >= BLUR_LIMIT:
        found.append((FlagKind.BLUR, {"count": blurs}))
    rts = [r.rt_ms for r in responses if r.rt_ms is not None]
    if len(rts) >= MIN_ITEMS_FOR_PATTERN:
        median = statistics.median(rts)
        if median < TOO_FAST_MEDIAN_MS:
            found.append((FlagKind.TOO_FAST, {"median_rt_ms": median}))
        mean = statistics.fmean(rts)
        if mean > 0 and statistics.pstdev(rts) / mean < UNIFORM_RT_CV:
            found.append((FlagKind.UNIFORM_RT, {"cv": statistics.pstdev(rts) / mean}))
    answers = [r.answer for r in responses]
    if (
        plan.kind == "questionnaire"
        and len(answers) >= MIN_ITEMS_FOR_PATTERN
        and len(set(answers)) == 1
    ):
        found.append((FlagKind.STRAIGHT_LINING, {"answer": answers[0], "items": len(answers)}))
    runs = (
        _identical_model_runs(session, {r.item_key: r.answer for r in responses})
        if plan.kind != "sequential" and len(answers) >= MIN_ITEMS_FOR_PATTERN
        else []
    )
    if runs:
        found.append((FlagKind.MODEL_MATCH, {"runs": runs}))
    return found


def _identical_model_runs(session: Session, answers: dict) -> list[int]:
    """Participant-mode model runs on the same task version that gave exactly these answers."""
    by_run: dict[int, dict] = {}
    rows = ModelResponse.objects.filter(
        run__task_version=session.study.task_version,
        run__mode=RunMode.PARTICIPANT,
        sample_index=0,
        item_key__in=list(answers),
    ).values_list("run_id", "item_key", "answer")
    for run_id, item_key, answer in rows:
        by_run.setdefault(run_id, {})[item_key] = answer
    return sorted(run_id for run_id, given in by_run.items() if given == answers)


# --- researcher side: progress and data out -------------------------------------------------


def study_progress(*, study: Study) -> dict:
    """Live counts: started (all), running, completed, returned, timed out, flagged, median.

    Overdue sessions are timed out first, so the counts are current.
    """
    expire_overdue_sessions(study=study)
    by_state = dict(
        study.sessions.values_list("state").annotate(n=Count("pk")).values_list("state", "n")
    )
    durations = [
        (finished - started).total_seconds()
        for started, finished in study.sessions.filter(state=SessionState.COMPLETED).values_list(
            "started", "finished"
        )
    ]
    return {
        "started": sum(by_state.values()),
        "running": by_state.get(SessionState.STARTED, 0),
        "completed": by_state.get(SessionState.COMPLETED, 0),
        "returned": by_state.get(SessionState.RETURNED, 0),
        "timed_out": by_state.get(SessionState.TIMED_OUT, 0),
        "screened_out": by_state.get(SessionState.SCREENED_OUT, 0),
        "withdrawn": study.withdrawals.count(),
        "flagged": study.sessions.filter(flags__isnull=False).distinct().count(),
        "median_seconds": statistics.median(durations) if durations else None,
    }


EXPORT_COLUMNS = [
    "participant",
    "condition",
    "state",
    "position",
    "item_key",
    "answer",
    "feedback",
    "rt_ms",
    "client_ts",
    "server_ts",
    "flags",
]


def export_rows(*, study: Study) -> list[dict]:
    """One row per response of the study's sessions (pseudonymous ids, no platform ids)."""
    rows = []
    sessions = study.sessions.prefetch_related("responses", "flags").order_by("pk")
    for session in sessions:
        flags = ",".join(sorted(f.kind for f in session.flags.all()))
        for r in session.responses.all():
            rows.append(
                {
                    "participant": session.participant_code,
                    "condition": session.condition,
                    "state": session.state,
                    "position": r.position,
                    "item_key": r.item_key,
                    "answer": r.answer,
                    "feedback": r.feedback,
                    "rt_ms": r.rt_ms,
                    "client_ts": r.client_ts.isoformat() if r.client_ts else None,
                    "server_ts": r.server_ts.isoformat(),
                    "flags": flags,
                }
            )
    return rows


def export_csv(*, study: Study) -> str:
    """The study's responses as CSV text (feedback as JSON in its column)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for row in export_rows(study=study):
        writer.writerow({**row, "feedback": json.dumps(row["feedback"]) if row["feedback"] else ""})
    return out.getvalue()


def export_json(*, study: Study) -> str:
    """The study's responses as a JSON document with the study's identity."""
    version = study.task_version
    return json.dumps(
        {
            "study": study.slug,
            "task": version.task.slug,
            "task_version": version.number,
            "spec_hash": version.spec_hash,
            "responses": export_rows(study=study),
        },
        indent=1,
    )


@dataclass(frozen=True)
class SessionRecord:
    """One completed session in Psych-201 shape."""

    session: Session
    text: str
    spans: list
    rts: list
    answers: dict
    profile: dict
    extra: dict


def session_records(*, study: Study) -> list[SessionRecord]:
    """Completed sessions rendered with the task's own template, as model runs are."""
    plan = plan_for(study)
    records = []
    completed = study.sessions.filter(state=SessionState.COMPLETED).order_by("pk")
    for session in completed.prefetch_related("responses"):
        responses = sorted(session.responses.all(), key=lambda r: r.position)
        turns = [Turn(r.item_key, r.answer, r.feedback) for r in responses]
        profile = {k: session.demographics[k] for k in PROFILE_KEYS if k in session.demographics}
        rendered = render_transcript(plan.spec, turns, profile=profile, items=plan.items)
        records.append(
            SessionRecord(
                session=session,
                text=rendered.text,
                spans=[list(s) for s in rendered.spans],
                rts=[r.rt_ms for r in responses],
                answers={r.item_key: r.answer for r in responses},
                profile=profile,
                extra={"study": study.slug, "condition": session.condition},
            )
        )
    return records


def export_psych201(*, study: Study) -> str:
    """Completed sessions as Psych-201 JSONL, one line per participant."""
    experiment = study.task_version.task.slug
    return "".join(
        psych201.to_json_line(
            text=r.text,
            experiment=experiment,
            participant=r.session.participant_code,
            rts=r.rts,
            profile=r.profile,
            extra=r.extra,
        )
        + "\n"
        for r in session_records(study=study)
    )


@transaction.atomic
def make_human_dataset(*, study: Study) -> tuple[HumanDataset, bool]:
    """Turn the study's completed sessions into a collected `HumanDataset` for scoring.

    The dataset is identified by the sha256 of its Psych-201 export, so making it again
    from the same sessions returns the existing one.

    Returns:
        The dataset and whether it was created now.

    Raises:
        ParticipationError: ``empty`` when no session is completed.
    """
    records = session_records(study=study)
    if not records:
        raise ParticipationError("empty", "The study has no completed sessions yet.")
    task = study.task_version.task
    transcripts = [
        Transcript(
            line=line,
            participant=r.session.participant_code,
            experiment=task.slug,
            text=r.text,
            spans=r.spans,
            rts=r.rts,
            answers=r.answers,
            profile=r.profile,
            extra={**r.extra, "session": r.session.pk},
        )
        for line, r in enumerate(records, start=1)
    ]
    # The digest is that of the stored dataset's export (`content_digest`), so a
    # withdrawal can keep it true and making the dataset again finds the updated one.
    # It is known once the rows are stored (the database may reorder JSON keys).
    with transaction.atomic():
        pending = f"pending-{secrets.token_hex(16)}"
        dataset = HumanDataset.objects.create(
            slug=pending,
            name=f"{study.title} ({len(records)} participants)",
            task=task,
            source=DatasetSource.COLLECTED,
            content_sha256=pending,
            file_name=f"{study.slug}.jsonl",
            provenance=f"Collected by study {study.slug!r} on task version "
            f"{study.task_version.number} ({study.task_version.spec_hash[:12]}).",
            n_participants=len(records),
        )
        for t in transcripts:
            t.dataset = dataset
        Transcript.objects.bulk_create(transcripts)
        digest = content_digest(dataset)
        existing = HumanDataset.objects.filter(content_sha256=digest).first()
        if existing is not None:
            transaction.set_rollback(True)
            return existing, False
        dataset.content_sha256 = digest
        dataset.slug = f"{study.slug}-{digest[:8]}"
        dataset.save(update_fields=["content_sha256", "slug"])
    return dataset, True
