"""Researcher side: a study's data out (CSV, JSON, Psych-201 JSONL, a collected dataset)."""

from __future__ import annotations

import csv
import io
import json
import secrets
from dataclasses import dataclass

from django.db import transaction

from benchmark import psych201
from benchmark.models import DatasetSource, HumanDataset, Transcript
from benchmark.rendering import Turn, render_transcript
from benchmark.services.datasets import content_digest
from participants.answers import finite_or_none
from participants.models import Session, SessionState, Study
from participants.plans import ParticipationError, plan_for

PROFILE_KEYS = ("age", "gender", "nationality", "education", "diagnosis")


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
                    "rt_ms": finite_or_none(r.rt_ms),
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
        allow_nan=False,  # strict JSON: a non-finite number is a bug, not an export
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
                rts=[finite_or_none(r.rt_ms) for r in responses],
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
