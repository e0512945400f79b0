"""Integrity signals of a finished session: hints for the researcher, never a rejection.

Every value read here came from a client; it is read defensively (only finite numbers
and whole counts), so nothing a browser sent can stop a session from completing.
"""

from __future__ import annotations

import statistics

from benchmark.models import ModelResponse, RunMode
from participants.answers import MAX_COUNT, finite_or_none
from participants.models import FlagKind, Session
from participants.plans import plan_for

PROFILE_KEYS = ("age", "gender", "nationality", "education", "diagnosis")
# Thresholds for the integrity flags: deliberately loose, a flag is only a hint.
TOO_FAST_MEDIAN_MS = 250
UNIFORM_RT_CV = 0.05
MIN_ITEMS_FOR_PATTERN = 5
BLUR_LIMIT = 5


def _count(value) -> int:
    """A stored count if it is a sane whole number, else 0 (rows stored before the schema)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return min(max(value, 0), MAX_COUNT)


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
    telemetry = [r.telemetry if isinstance(r.telemetry, dict) else {} for r in responses]
    if any(t.get("webdriver") is True for t in telemetry):
        found.append((FlagKind.WEBDRIVER, {}))
    pastes = sum(_count(t.get("paste")) for t in telemetry)
    if pastes:
        found.append((FlagKind.PASTE, {"count": pastes}))
    blurs = sum(_count(t.get("blur")) for t in telemetry)
    if blurs >= BLUR_LIMIT:
        found.append((FlagKind.BLUR, {"count": blurs}))
    rts = [rt for r in responses if (rt := finite_or_none(r.rt_ms)) is not None and rt >= 0]
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
