"""The end-to-end demo: bundled models through the real run queue, then a report.

`queue_demo_runs` queues, for every endpoint, the runs the demo shows: ``ipip-big5-50`` as
a participant (exact scoring, the neutral and the "typical human" prompt) and as a
population predictor, ``choices13k`` as a participant, and a ``likelihood`` run on the
Psych-201 transcripts of Thoma & Schulze (2025). The runs go through the same queue as any
other (`benchmark.services.runs.queue_run`): the in-process worker in embedded mode, the
``rundramatiq`` workers with a broker. `wait_for_runs` and `wait_for_report` poll the
database (the source of truth) and say how far things are; `summary_lines` turns the
report's ``summary.json`` into the three lines the demo prints.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from benchmark.models import HumanDataset, ModelEndpoint, ModelRun, RunMode, RunState, Task
from benchmark.services.progress import run_progress
from benchmark.services.runs import RunError, queue_run
from scoring.models import Report, ReportState
from scoring.services import ReportError, create_report, report_path

QUESTIONNAIRE = "ipip-big5-50"
CHOICES = "choices13k"
TRANSCRIPTS = "thoma2025-riskychoice"
TRANSCRIPT_DATASET = "thoma2025riskychoice"
# IPIP-50's N is emotional stability: Π rises with neuroticism, so N is read reversed.
PI_ORIENT = f"-{QUESTIONNAIRE}:N"
FINISHED = (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.PAUSED)


class DemoError(RuntimeError):
    """Something the demo cannot go on without; the message says what to do."""


@dataclass
class DemoRun:
    """A queued demo run and what it is, in words."""

    run: ModelRun
    label: str


def _version(slug: str):
    task = Task.objects.filter(slug=slug).first()
    if task is None or task.latest_version is None:
        raise DemoError(f"task {slug!r} is not loaded: run `manage.py load_tasks` first")
    return task.latest_version


def check_ready() -> None:
    """Check that the demo's tasks and transcripts are loaded (before anything starts).

    Raises:
        DemoError: what is missing and the command that loads it.
    """
    for slug in (QUESTIONNAIRE, CHOICES, TRANSCRIPTS):
        _version(slug)
    if not HumanDataset.objects.filter(slug=TRANSCRIPT_DATASET).exists():
        raise DemoError(f"dataset {TRANSCRIPT_DATASET!r} is not loaded: run `manage.py load_tasks`")


def queue_demo_runs(
    *,
    endpoints: list[ModelEndpoint],
    max_items: int | None = None,
    participants: int | None = None,
    predict_items: int | None = None,
    predict_samples: int = 2,
    seed: int = 0,
    say: Callable[[str], None] = lambda text: None,
) -> list[DemoRun]:
    """Queue the demo's runs for every endpoint (each run on its task's latest version).

    Args:
        endpoints: the models; each gets the same five runs.
        max_items: only the first N items of ``ipip-big5-50`` and ``choices13k``.
        participants: only the first N transcripts of the likelihood run (default: all).
        predict_items: only the first N items in the population prediction (exact
            predictions score 101 numbers per option: the slowest run of the demo).
        predict_samples: samples per item when the population prediction cannot be exact.
        seed: the runs' seed.
        say: called with a line of text for each run queued.

    Returns:
        The queued runs, in the order queued.

    Raises:
        DemoError: a task or dataset is missing, or a run cannot be queued (nothing of
            that endpoint's later runs is queued then).
    """
    ipip, choices, transcripts = (_version(s) for s in (QUESTIONNAIRE, CHOICES, TRANSCRIPTS))
    dataset = HumanDataset.objects.filter(slug=TRANSCRIPT_DATASET).first()
    if dataset is None:
        raise DemoError(f"dataset {TRANSCRIPT_DATASET!r} is not loaded: run `manage.py load_tasks`")
    queued = []
    for endpoint in endpoints:
        plans = [
            (ipip, RunMode.PARTICIPANT, {"scoring_mode": "exact"}, "participant, exact"),
            (
                ipip,
                RunMode.PARTICIPANT,
                {"scoring_mode": "exact", "prompt_variant": "human"},
                "participant, exact, 'typical human' prompt",
            ),
            (ipip, RunMode.PREDICT_POPULATION, {}, "population prediction"),
            (choices, RunMode.PARTICIPANT, {"scoring_mode": "exact"}, "participant, exact"),
            (
                transcripts,
                RunMode.LIKELIHOOD,
                {"dataset": dataset, "max_participants": participants},
                f"likelihood of {TRANSCRIPT_DATASET}",
            ),
        ]
        for version, mode, extra, label in plans:
            common = {"endpoint": endpoint, "task_version": version, "mode": mode, "seed": seed}
            if mode == RunMode.PREDICT_POPULATION:
                limits = [n for n in (max_items, predict_items) if n]
                common["max_items"] = min(limits) if limits else None
            elif mode != RunMode.LIKELIHOOD:
                common["max_items"] = max_items
            try:
                if mode == RunMode.PREDICT_POPULATION:
                    run, label = _queue_prediction(common, predict_samples)
                else:
                    run = queue_run(**common, **extra)
            except RunError as exc:
                raise DemoError(f"{endpoint.name} on {version.task.slug}: {exc}") from exc
            item = DemoRun(run, f"{endpoint.name} · {version.task.slug} · {label}")
            queued.append(item)
            say(f"queued run {run.pk}: {item.label} ({run_progress(run).total} responses)")
    return queued


def _queue_prediction(common: dict, samples: int) -> tuple[ModelRun, str]:
    """A population prediction from log-probabilities where the endpoint allows it, else sampled."""
    try:
        return queue_run(**common, scoring_mode="exact"), "population prediction, exact"
    except RunError:
        run = queue_run(**common, scoring_mode="sampled", samples=samples)
        return run, f"population prediction, sampled ×{samples}"


def wait_for_runs(
    runs: list[DemoRun],
    *,
    say: Callable[[str], None],
    every: float = 10.0,
    poll: float = 1.0,
    timeout: float = 6 * 3600,
) -> None:
    """Wait until every run has finished, saying how far they are every ``every`` seconds.

    Raises:
        DemoError: a run failed, was cancelled or paused, has failed units, or the
            timeout passed.
    """
    started = time.monotonic()
    last_said = -every
    while True:
        states = dict(
            ModelRun.objects.filter(pk__in=[r.run.pk for r in runs]).values_list("pk", "state")
        )
        finished = all(states[r.run.pk] in FINISHED for r in runs)
        now = time.monotonic() - started
        if finished or now - last_said >= every:
            last_said = now
            parts = []
            for r in runs:
                p = run_progress(r.run)
                parts.append(f"run {r.run.pk} {p.done}/{p.total}")
            say(f"[{now:5.0f} s] " + ", ".join(parts))
        if finished:
            break
        if now > timeout:
            raise DemoError(f"runs not finished after {timeout:.0f} s: {states}")
        time.sleep(poll)
    for r in runs:
        run = ModelRun.objects.get(pk=r.run.pk)
        p = run_progress(run)
        if run.state != RunState.COMPLETED or p.units_failed:
            detail = run.error or "; ".join(p.errors) or run.state
            raise DemoError(f"run {run.pk} ({r.label}) did not complete: {detail}")


def request_report(
    *, runs: list[DemoRun], resamples: int, seed: int = 0, title: str = ""
) -> Report:
    """Freeze the demo's runs into a report and queue its build on the ``default`` queue.

    Raises:
        DemoError: the selection cannot make a report (the reason from `create_report`).
    """
    try:
        return create_report(
            runs=[ModelRun.objects.get(pk=r.run.pk) for r in runs],
            params={"resamples": resamples, "seed": seed, "pi_orient": PI_ORIENT},
            title=title or "Geppetto demo: bundled models against the shipped human data",
        )
    except ReportError as exc:
        raise DemoError(f"no report: {exc}") from exc


def wait_for_report(
    report: Report,
    *,
    say: Callable[[str], None],
    every: float = 10.0,
    poll: float = 1.0,
    timeout: float = 3600,
) -> Report:
    """Wait until the report is built, saying its progress; the built report.

    Raises:
        DemoError: the build failed, or the timeout passed.
    """
    started = time.monotonic()
    last = None
    last_said = -every
    while True:
        report = Report.objects.get(pk=report.pk)
        now = time.monotonic() - started
        state = (report.state, report.step)
        if report.state in (ReportState.DONE, ReportState.FAILED) or (
            state != last and now - last_said >= every
        ):
            last, last_said = state, now
            say(f"[{now:5.0f} s] report {report.pk}: {report.progress * 100:3.0f}% {report.step}")
        if report.state == ReportState.DONE:
            return report
        if report.state == ReportState.FAILED:
            raise DemoError(f"report {report.pk} failed: {report.error}")
        if now > timeout:
            raise DemoError(f"report {report.pk} not built after {timeout:.0f} s")
        time.sleep(poll)


def report_summary(report: Report) -> dict:
    """The ``summary.json`` inside a built report's ZIP."""
    with zipfile.ZipFile(report_path(report)) as z:
        return json.loads(z.read("summary.json"))


def _ci(value: dict, digits: int = 3) -> str:
    if value.get("value") is None:
        return "n/a"
    return f"{value['value']:.{digits}f} [{value['low']:.{digits}f}, {value['high']:.{digits}f}]"


def summary_lines(summary: dict) -> list[str]:
    """The three lines the demo prints, from a report's ``summary.json``.

    First-person alignment against the population reference, scale percentiles, and
    third-person accuracy, each with one clause per model or prompt variant.
    """
    sections = summary["sections"]
    first = next(
        (
            v
            for k, v in sorted(sections.items())
            if k.startswith(f"first_person__{QUESTIONNAIRE}__") and v.get("runs")
        ),
        None,
    )
    third = next(
        (v for k, v in sorted(sections.items()) if k.startswith(f"third_person__{QUESTIONNAIRE}")),
        None,
    )
    lines = []
    if first and first.get("runs"):
        ref = first["runs"][0]["js"]["population_reference"]
        clauses = [f"{r['model']} {_ci(r['js']['corrected'])}" for r in first["runs"] if "js" in r]
        lines.append(
            f"Alignment, {QUESTIONNAIRE} vs {first['dataset']} ({first['people']:,} people), "
            f"JS distance corrected [95% interval]: {'; '.join(clauses)}; population "
            f"reference {_ci(ref, 4)} (a model that is the population scores this, not 0)"
        )
    else:
        lines.append("Alignment: no first-person section in this report")
    if first and first.get("scale_placement"):
        by_model: dict[str, list[str]] = {}
        for p in first["scale_placement"]:
            name = p.get("construct") or p["scale_name"]
            by_model.setdefault(p["model"], []).append(f"{name} {p['percentile']:.1f}")
        lines.append(
            "Scale percentiles among the respondents: "
            + "; ".join(f"{m}: {', '.join(v)}" for m, v in by_model.items())
        )
    else:
        lines.append("Scale percentiles: none (no individual answers to place the model among)")
    if third and third.get("runs"):
        clauses = []
        for r in third["runs"]:
            if not r["items"]:
                clauses.append(f"{r['model']} ({r['path']}): no prediction parsed")
                continue
            text = f"{r['model']} ({r['path']}, {r['items']} items) "
            text += f"1 − JS {_ci(r['js_similarity'])}"
            if r.get("opinionqa"):
                text += f", 1 − W1/range {_ci(r['opinionqa'])}"
            text += f", {r['unparsed_share'] * 100:.0f}% unparsed"
            clauses.append(text)
        lines.append("Third-person accuracy: " + "; ".join(clauses))
    else:
        lines.append("Third-person accuracy: no population-prediction section in this report")
    return lines
