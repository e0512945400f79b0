"""Reports: select and freeze inputs, build the bundle, tell whether a report is stale.

`create_report` validates a selection before anything is computed (clear errors naming the
run, task or dataset), freezes it with the digests of its inputs and queues the build;
`build_report` computes the sections and writes the ZIP; `report_stale` compares the
frozen digests with the current ones (a participant's withdrawal changes a collected
dataset's ``content_sha256``; new or rewritten responses change a run's digest).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from benchmark.models import (
    DatasetKind,
    HumanDataset,
    ModelRun,
    RunMode,
    RunState,
    TaskKind,
    UnitState,
)
from benchmark.services.progress import run_progress
from scoring import frames
from scoring.models import Report, ReportState
from scoring.reports import bundle as bundles
from scoring.reports.first_person import first_person
from scoring.reports.individual import individual_section
from scoring.reports.likelihood import likelihood
from scoring.reports.link import link
from scoring.reports.pinocchio import PinocchioError, pinocchio_section
from scoring.reports.scales import norms_section
from scoring.reports.third_person import third_person

DEFAULT_PARAMS = {
    "metric": "js",
    "resamples": 1000,
    "seed": 0,
    "confidence": 0.95,
    "pi_orient": "",
}
SECTION_KINDS = ("first_person", "third_person", "individual", "likelihood", "pinocchio", "link")


class ReportError(ValueError):
    """A selection that cannot make a report; the message names what and where."""


@cache
def code_version() -> str:
    """The package version and, in a git checkout, the commit (``0.1.0+abc1234``)."""
    from importlib import metadata

    try:
        version = metadata.version("geppetto")
    except metadata.PackageNotFoundError:
        version = "0"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],  # noqa: S607 (git on PATH)
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit}" if commit else version


def _check_runs(runs: list[ModelRun]) -> None:
    if not runs:
        raise ReportError("a report needs at least one run")
    for run in runs:
        if run.state != RunState.COMPLETED:
            raise ReportError(f"run {run.pk} is {run.state}, not completed")
        failed = run.units.filter(state=UnitState.FAILED).count()
        if failed:
            raise ReportError(f"run {run.pk} has {failed} failed work unit(s): retry them first")
        progress = run_progress(run)
        if progress.done < progress.total:
            raise ReportError(
                f"run {run.pk} has too few responses: {progress.done} of {progress.total}"
            )
    versions: dict[str, dict[int, list[int]]] = {}
    for run in runs:
        slug = run.task_version.task.slug
        versions.setdefault(slug, {}).setdefault(run.task_version.number, []).append(run.pk)
    for slug, by_number in sorted(versions.items()):
        if len(by_number) > 1:
            detail = "; ".join(
                f"version {n}: runs {', '.join(map(str, sorted(ids)))}"
                for n, ids in sorted(by_number.items())
            )
            raise ReportError(f"runs of different task versions of {slug}: {detail}")


def plan_sections(
    runs: list[ModelRun], datasets: list[HumanDataset], wanted: list[str] | None
) -> tuple[list[str], list[HumanDataset]]:
    """The sections a selection supports, and the human datasets they read.

    Raises:
        ReportError: a dataset for a task no run did, a dataset with no items in common,
            a participant or prediction run without human data, a requested section the
            selection cannot give (e.g. Π with one model), an unknown section.
    """
    unknown = sorted(set(wanted or []) - set(SECTION_KINDS))
    if unknown:
        raise ReportError(f"unknown sections {unknown}; known: {list(SECTION_KINDS)}")
    by_task: dict[str, list[ModelRun]] = {}
    for run in runs:
        by_task.setdefault(run.task_version.task.slug, []).append(run)
    for d in datasets:
        if d.task is None or d.task.slug not in by_task:
            raise ReportError(
                f"dataset {d.slug} is for task {d.task.slug if d.task else '(none)'}, "
                "which no selected run did"
            )
    sections, used = [], []
    for slug, task_runs in sorted(by_task.items()):
        version = task_runs[0].task_version
        modes = {r.mode for r in task_runs}
        compared = modes & {RunMode.PARTICIPANT, RunMode.PREDICT_POPULATION}
        if compared and version.kind != "sequential":
            candidates = [d for d in datasets if d.task.slug == slug] or list(
                HumanDataset.objects.filter(task__slug=slug).order_by("slug")
            )
            # Published norms place a questionnaire's scale scores; they hold no answers.
            norms = [d for d in candidates if d.kind == DatasetKind.NORMS]
            if norms and (
                version.kind != TaskKind.QUESTIONNAIRE or RunMode.PARTICIPANT not in modes
            ):
                given = [d.slug for d in norms if d in datasets]
                if given:
                    raise ReportError(
                        f"dataset {given[0]} holds published norms: it places the scale "
                        f"scores of participant runs of a questionnaire, and task {slug} "
                        "has none"
                    )
                norms = []
            items = frames.item_set(version)
            dataset = None
            for d in candidates:
                if d.kind == DatasetKind.NORMS:
                    continue
                human = frames.human_items(d, items)
                if human.keys:
                    dataset = d
                    break
                if d in datasets:
                    raise ReportError(
                        f"dataset {d.slug} has no items in common with task {slug} "
                        f"version {version.number}"
                    )
            if dataset is None and (not norms or RunMode.PREDICT_POPULATION in modes):
                raise ReportError(f"no human dataset with answers to the items of task {slug}")
            if dataset is not None:
                used.append(dataset)
                if RunMode.PARTICIPANT in modes:
                    sections.append(f"first_person:{slug}:{dataset.slug}")
                if RunMode.PREDICT_POPULATION in modes:
                    sections.append(f"third_person:{slug}:{dataset.slug}")
                if modes >= {RunMode.PARTICIPANT, RunMode.PREDICT_POPULATION}:
                    sections.append(f"link:{slug}:{dataset.slug}")
            for d in norms:
                used.append(d)
                sections.append(f"first_person:{slug}:{d.slug}")
        # Individual predictions are scored on the people of their own run's dataset.
        for d in sorted(
            {r.dataset for r in task_runs if r.mode == RunMode.PREDICT_INDIVIDUAL},
            key=lambda d: d.slug,
        ):
            sections.append(f"individual:{slug}:{d.slug}")
            used.append(d)
    if any(r.mode == RunMode.LIKELIHOOD for r in runs):
        sections.append("likelihood")
    rows = {
        (r.endpoint_id, r.prompt_variant)
        for r in runs
        if r.mode == RunMode.PARTICIPANT and r.task_version.kind == TaskKind.QUESTIONNAIRE
    }
    if len(rows) >= 2:
        sections.append("pinocchio")
    elif wanted and "pinocchio" in wanted:
        raise ReportError(
            f"Π needs questionnaire participant runs of at least two models or prompt "
            f"variants; this selection has {len(rows)}"
        )
    if wanted:
        missing = [w for w in wanted if not any(s.split(":")[0] == w for s in sections)]
        if missing:
            raise ReportError(f"the selected runs cannot give the sections {missing}")
        sections = [s for s in sections if s.split(":")[0] in wanted]
    return sections, sorted(set(used), key=lambda d: d.slug)


def _params(params: dict | None) -> dict:
    merged = {**DEFAULT_PARAMS, **(params or {})}
    unknown = sorted(set(merged) - set(DEFAULT_PARAMS))
    if unknown:
        raise ReportError(f"unknown parameters {unknown}; known: {sorted(DEFAULT_PARAMS)}")
    if merged["metric"] not in ("js", "tv", "w1"):
        raise ReportError(f"metric must be js, tv or w1, not {merged['metric']!r}")
    if not isinstance(merged["resamples"], int) or not 50 <= merged["resamples"] <= 100_000:
        raise ReportError("resamples must be a whole number from 50 to 100000")
    if not 0.5 <= float(merged["confidence"]) < 1:
        raise ReportError("confidence must be at least 0.5 and below 1")
    return merged


def input_digests(runs, datasets) -> dict:
    """What the report's numbers depend on, as digests."""
    return {
        "datasets": {d.slug: d.content_sha256 for d in datasets},
        "runs": {str(r.pk): frames.run_digest(r) for r in runs},
        "task_versions": {
            str(v.pk): v.spec_hash for v in sorted({r.task_version for r in runs}, key=str)
        },
    }


def create_report(
    *,
    runs,
    datasets=(),
    sections: list[str] | None = None,
    params: dict | None = None,
    title: str = "",
    user=None,
    enqueue: bool = True,
) -> Report:
    """Validate and freeze a selection; queue its build on the ``default`` queue.

    Raises:
        ReportError: the selection cannot make a report (nothing is stored then).
    """
    runs = sorted(runs, key=lambda r: r.pk)
    datasets = list(datasets)
    merged = _params(params)
    _check_runs(runs)
    planned, used = plan_sections(runs, datasets, sections)
    if not planned:
        raise ReportError(
            "nothing to compare: no section reads these runs (participant runs of sequential "
            "tasks are not reported yet)"
        )
    with transaction.atomic():
        report = Report.objects.create(
            title=title
            or f"Alignment report: {', '.join(sorted({r.task_version.task.slug for r in runs}))}",
            sections=planned,
            params=merged,
            inputs=input_digests(runs, used),
            code_version=code_version(),
            created_by=user if user is not None and user.is_authenticated else None,
        )
        report.runs.set(runs)
        report.datasets.set(used)
        report.task_versions.set({r.task_version for r in runs})
        if enqueue:
            from scoring.actors import build_report_job

            transaction.on_commit(lambda: build_report_job.send(report.pk))
    return report


REPORTED_MODES = (
    RunMode.PARTICIPANT,
    RunMode.PREDICT_POPULATION,
    RunMode.PREDICT_INDIVIDUAL,
    RunMode.LIKELIHOOD,
)


def create_task_report(*, versions, params: dict | None = None, user=None) -> Report:
    """A report of every finished run of some task versions, against their human data.

    Finished: completed, with every unit done and every response there. Runs that no
    section reads (sequential tasks played as a participant) are left out. Each task's
    human datasets are the default ones (`plan_sections`).

    Raises:
        ReportError: no version given, or nothing to compare (no finished run, or no
            section that the runs and the human data can give).
    """
    versions = list(versions)
    if not versions:
        raise ReportError("select at least one task version")
    names = ", ".join(f"{v.task.slug} v{v.number}" for v in versions)
    candidates = ModelRun.objects.filter(
        task_version__in=versions, state=RunState.COMPLETED, mode__in=REPORTED_MODES
    ).select_related("task_version__task")
    runs = []
    for run in candidates.order_by("pk"):
        if run.mode == RunMode.PARTICIPANT and run.task_version.kind == TaskKind.SEQUENTIAL:
            continue
        progress = run_progress(run)
        if progress.units_failed or progress.done < progress.total:
            continue
        runs.append(run)
    if not runs:
        raise ReportError(
            f"nothing to compare: {names} has no finished participant, predict_population, "
            "predict_individual or likelihood run"
        )
    return create_report(
        runs=runs,
        params=params,
        title=f"Alignment report: {names} (every finished run)",
        user=user,
    )


def report_stale(report: Report) -> list[str]:
    """Why a report's inputs differ from what it was built from (empty: not stale)."""
    reasons = []
    current = {d.slug: d for d in HumanDataset.objects.filter(slug__in=report.inputs["datasets"])}
    for slug, digest in sorted(report.inputs.get("datasets", {}).items()):
        if slug not in current:
            reasons.append(f"dataset {slug} was deleted")
        elif current[slug].content_sha256 != digest:
            reasons.append(f"dataset {slug} changed (e.g. a participant withdrew)")
    runs = {str(r.pk): r for r in ModelRun.objects.filter(pk__in=report.inputs["runs"])}
    for pk, digest in sorted(report.inputs.get("runs", {}).items(), key=lambda kv: int(kv[0])):
        if pk not in runs:
            reasons.append(f"run {pk} was deleted")
        elif frames.run_digest(runs[pk]) != digest:
            reasons.append(f"run {pk}'s responses changed")
    return reasons


def report_path(report: Report) -> Path:
    """Where a report's ZIP lives."""
    return Path(settings.MEDIA_ROOT) / report.file


def _set_progress(report: Report, share: float, step: str) -> None:
    # Written at once (outside any transaction) so the admin and the API see it move.
    Report.objects.filter(pk=report.pk).update(progress=round(share, 4), step=step)
    report.progress, report.step = share, step


def compute_sections(report: Report, progress: Callable[[float, str], None]) -> list:
    """Every section of a report, computed from the frozen selection."""
    params = report.params
    runs = list(report.runs.select_related("endpoint__base_model", "task_version__task", "dataset"))
    datasets = {d.slug: d for d in report.datasets.all()}
    versions = {r.task_version.task.slug: r.task_version for r in runs}
    item_sets = {slug: frames.item_set(v) for slug, v in versions.items()}
    out, done = [], {}
    total = len(report.sections)
    for n, name in enumerate(report.sections):
        kind, *rest = name.split(":")
        progress(n / total, name)
        if kind == "first_person" and datasets[rest[1]].kind == DatasetKind.NORMS:
            slug, dataset = rest
            section = norms_section(
                slug,
                dataset,
                [
                    (frames.run_info(r), frames.norm_positions(r, datasets[dataset]))
                    for r in runs
                    if r.task_version.task.slug == slug and r.mode == RunMode.PARTICIPANT
                ],
                item_sets[slug].spec_scales,
            )
        elif kind in ("first_person", "third_person", "link"):
            slug, dataset = rest
            items = item_sets[slug]
            human = frames.human_items(datasets[dataset], items)
            mode = RunMode.PARTICIPANT if kind != "third_person" else RunMode.PREDICT_POPULATION
            chosen = [
                (frames.run_info(r), frames.model_items(r, items))
                for r in runs
                if r.task_version.task.slug == slug and r.mode == mode
            ]
            if kind == "first_person":
                section = first_person(
                    chosen,
                    human,
                    items,
                    params,
                    progress=lambda s, n=n, name=name: progress((n + s) / total, name),
                )
            elif kind == "third_person":
                section = third_person(chosen, human, items, params)
            else:
                section = link(
                    done[f"first_person:{slug}:{dataset}"], done[f"third_person:{slug}:{dataset}"]
                )
        elif kind == "individual":
            slug, dataset = rest
            items = item_sets[slug]
            human = frames.human_items(datasets[dataset], items)
            chosen = [
                (frames.run_info(r), frames.individual_predictions(r, items, human))
                for r in runs
                if r.task_version.task.slug == slug
                and r.mode == RunMode.PREDICT_INDIVIDUAL
                and r.dataset.slug == dataset
            ]
            section = individual_section(chosen, human, items, params)
        elif kind == "likelihood":
            section = likelihood(
                [
                    (
                        frames.run_info(r),
                        frames.likelihood_frame(r),
                        frames.choices_per_response(r.task_version),
                    )
                    for r in runs
                    if r.mode == RunMode.LIKELIHOOD
                ],
                params,
            )
        else:
            entries = [
                (frames.run_info(r), frames.model_items(r, item_sets[r.task_version.task.slug]))
                for r in runs
                if r.mode == RunMode.PARTICIPANT and r.task_version.kind == TaskKind.QUESTIONNAIRE
            ]
            try:
                section = pinocchio_section(entries, item_sets, params)
            except PinocchioError as exc:
                raise ReportError(str(exc)) from exc
        section.name = name.replace(":", "__")
        done[name] = section
        out.append(section)
    return out


def build_report(*, report: Report, progress: Callable[[float, str], None] | None = None) -> Report:
    """Compute the report's sections and write its ZIP; safe to run again.

    A failure is stored on the report (state ``failed`` and the message) and re-raised.
    """
    report = Report.objects.get(pk=report.pk)

    def step(share: float, name: str) -> None:
        _set_progress(report, share, name)
        if progress:
            progress(share, name)

    Report.objects.filter(pk=report.pk).update(
        state=ReportState.RUNNING, started=timezone.now(), error=""
    )
    try:
        sections = compute_sections(report, step)
        summary = {
            "schema": bundles.SCHEMA,
            "report": report.pk,
            "title": report.title,
            "built_at": timezone.now().isoformat(timespec="seconds"),
            "code_version": report.code_version,
            "software": bundles.software_versions(),
            "params": report.params,
            "inputs": report.inputs,
            "stale": report_stale(report),
            "sections": {s.name: s.summary for s in sections},
            "notes": {s.name: s.notes for s in sections if s.notes},
        }
        data = bundles.bundle(summary, sections)
    except Exception as exc:
        Report.objects.filter(pk=report.pk).update(
            state=ReportState.FAILED, error=f"{type(exc).__name__}: {exc}", finished=timezone.now()
        )
        raise
    relative = f"reports/report-{report.pk}.zip"
    path = Path(settings.MEDIA_ROOT) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    with transaction.atomic():
        Report.objects.filter(pk=report.pk).update(
            state=ReportState.DONE,
            progress=1.0,
            step="done",
            file=relative,
            sha256=hashlib.sha256(data).hexdigest(),
            finished=timezone.now(),
        )
    step(1.0, "done")
    return Report.objects.get(pk=report.pk)
