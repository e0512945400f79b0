"""Participant verbs: start, consent, answer, complete, withdraw, time out.

Views and the admin call these; each runs in one transaction and returns model
objects. Nothing here trusts the client with an outcome: feedback of sequential
tasks is computed from the task's seeded environment when an answer is saved.
Integrity signals live in `participants.integrity`, progress and exports in
`participants.exports`; their verbs are importable from here too.
"""

from __future__ import annotations

import hashlib
import random
import statistics
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from benchmark.models import DatasetSource, HumanDataset, Transcript
from benchmark.services.datasets import content_digest
from participants.answers import (
    MAX_CLIENT_TS,
    MAX_RT_MS,
    BadAnswer,
    clean_telemetry,
    finite_or_none,
)
from participants.exports import (  # noqa: F401
    EXPORT_COLUMNS,
    PROFILE_KEYS,
    SessionRecord,
    export_csv,
    export_json,
    export_psych201,
    export_rows,
    make_human_dataset,
    session_records,
)
from participants.integrity import assess
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
from participants.plans import (  # noqa: F401
    ParticipationError,
    Plan,
    feedback_for,
    plan_for,
    trial_order,
)
from participants.queries import insert_response
from participants.recruitment import Arrival


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


def _hold_cutoff(now: datetime) -> datetime:
    return now - timedelta(minutes=settings.CONSENT_HOLD_MINUTES)


def expire_if_overdue(*, session: Session, now: datetime | None = None) -> Session:
    """Time out a running session past its deadline, or still without consent after the hold.

    Returns the session (refreshed when it was timed out). The update is one statement
    that only moves a session still started, so it needs no transaction of its own.
    """
    now = now or timezone.now()
    unconsented = session.consented is None and session.started <= _hold_cutoff(now)
    if session.state == SessionState.STARTED and (session.deadline <= now or unconsented):
        Session.objects.filter(pk=session.pk, state=SessionState.STARTED).update(
            state=SessionState.TIMED_OUT, finished=now
        )
        session.refresh_from_db(fields=["state", "finished"])
    return session


@transaction.atomic
def expire_overdue_sessions(*, study: Study | None = None) -> int:
    """Time out running sessions past their deadline or unconsented past the hold.

    A link opened with an invented id holds a place only until the consent hold
    (``settings.CONSENT_HOLD_MINUTES``) runs out. Returns how many sessions ended.
    """
    now = timezone.now()
    overdue = Session.objects.filter(state=SessionState.STARTED).filter(
        Q(deadline__lte=now) | Q(consented__isnull=True, started__lte=_hold_cutoff(now))
    )
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


def _reaction_time(value) -> float | None:
    rt = finite_or_none(value)
    return rt if rt is not None and 0 <= rt <= MAX_RT_MS else None


def _telemetry(value) -> dict:
    try:
        return clean_telemetry(value)
    except BadAnswer:
        return {}


def _client_time(value) -> datetime | None:
    if not isinstance(value, str) or len(value) > MAX_CLIENT_TS or "\x00" in value:
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
        ParticipationError: ``bad_key``, ``unknown_item``, ``bad_answer``,
            ``out_of_order``, ``not_ready`` (task not started yet), ``withdrawn`` or the
            session's end state.
    """
    if not idempotency_key or len(idempotency_key) > 64:
        raise ParticipationError("bad_key", "An idempotency key of 1-64 characters is required.")
    session = expire_if_overdue(session=session)
    if session.state != SessionState.STARTED:
        # A retry of an answer stored before the session ended still gets it back.
        stored = Response.objects.filter(session=session, idempotency_key=idempotency_key)
        if (found := stored.first()) is not None:
            return found, False
        raise ParticipationError(session.state, "This session is over.")
    if next_step(session) != "task":
        raise ParticipationError("not_ready", "The task has not started yet.")
    plan = plan_for(session.study)
    if item_key not in session.trial_order:
        raise ParticipationError("unknown_item", f"{item_key!r} is not a trial of this session.")
    options = {o["key"] for o in plan.trials[item_key]["options"]}
    if answer not in options:
        raise ParticipationError("bad_answer", f"{answer!r} is not one of {sorted(options)}.")
    position = session.trial_order.index(item_key)
    # Sequential trials: the n-th answer is stored only while n answers exist, and at most
    # one row per item can exist, so rows are in order without locking the session.
    if plan.kind == "sequential" and Response.objects.filter(session=session).count() != position:
        if (stored := _stored_answer(session, item_key, idempotency_key)) is not None:
            return stored, False
        raise ParticipationError("out_of_order", "Trials must be answered in order.")
    response = Response(
        session=session,
        item_key=item_key,
        position=position,
        answer=answer,
        feedback=feedback_for(session.study, item_key, answer),
        idempotency_key=idempotency_key,
        rt_ms=_reaction_time(rt_ms),
        client_ts=_client_time(client_ts),
        telemetry=_telemetry(telemetry),
    )
    # The unique constraints (one row per item, one per idempotency key) decide: the
    # common case is one INSERT; a retry or a stale tab inserts nothing and gets the row
    # that is already stored.
    try:
        if insert_response(response):
            return response, True
    except IntegrityError:
        pass  # the session's row is gone
    if (stored := _stored_answer(session, item_key, idempotency_key)) is not None:
        return stored, False
    raise ParticipationError("withdrawn", "This session was withdrawn.")


def _stored_answer(session: Session, item_key: str, idempotency_key: str) -> Response | None:
    """The row a repeated answer gets: same idempotency key first, else the same item."""
    rows = Response.objects.filter(
        Q(idempotency_key=idempotency_key) | Q(item_key=item_key), session=session
    )
    by_key = {row.idempotency_key: row for row in rows}
    return by_key.get(idempotency_key) or next(iter(by_key.values()), None)


@transaction.atomic
def complete_session(*, session: Session) -> Session:
    """Finish a session whose every trial is answered and record its integrity flags.

    Raises:
        ParticipationError: ``incomplete`` (answers missing), or the session's end state.
    """
    study = session.study  # as loaded by the caller (the view: with its task version)
    session = Session.objects.select_for_update().get(pk=session.pk)
    session.study = study
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


# --- researcher side: progress ------------------------------------------------------------


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
        # Places taken by sessions that have not reached the first trial yet.
        "held_not_started": study.sessions.filter(
            state=SessionState.STARTED, instructions_done__isnull=True
        ).count(),
        "completed": by_state.get(SessionState.COMPLETED, 0),
        "returned": by_state.get(SessionState.RETURNED, 0),
        "timed_out": by_state.get(SessionState.TIMED_OUT, 0),
        "screened_out": by_state.get(SessionState.SCREENED_OUT, 0),
        "withdrawn": study.withdrawals.count(),
        "flagged": study.sessions.filter(flags__isnull=False).distinct().count(),
        "median_seconds": statistics.median(durations) if durations else None,
    }
