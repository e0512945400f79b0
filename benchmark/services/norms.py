"""Norms datasets: published scale norms stored as a human dataset of kind ``norms``.

Bundled tasks name a norms CSV in ``human_data`` (loader ``norms_csv``);
`import_psychobench` turns PsychoBench's questionnaire file into tasks with norms.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils.text import slugify

from benchmark.models import DatasetKind, DatasetSource, HumanDataset, ScaleNorm, Task
from benchmark.norms import NormRow, NormsError, read_norms_csv
from benchmark.psychobench import LICENCE, parse_questionnaires


def norms_digest(slug: str, rows: list[NormRow]) -> str:
    """The content hash of a norms dataset: its slug and every row, in order."""
    payload = json.dumps([slug] + [list(vars(r).values()) for r in rows], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@transaction.atomic
def create_norms_dataset(
    *,
    task: Task,
    slug: str,
    name: str,
    rows: list[NormRow],
    source: str,
    licence: str = "",
    provenance: str = "",
    file_name: str = "",
) -> tuple[HumanDataset, bool]:
    """Store checked norms as a ``norms`` dataset of a task, unless the same is there.

    Args:
        task: the task whose scales the norms describe.
        slug: the dataset's slug.
        name: its display name.
        rows: norms already checked against the task's scales (`benchmark.norms`).
        source: bundled or imported (`DatasetSource`).
        licence: the licence of the norms, as stated.
        provenance: where they come from.
        file_name: the file they were read from.

    Returns:
        The dataset and whether it was created now. Its ``n_participants`` is the largest
        group's n (groups may overlap, e.g. everyone and women), or None when no row gives
        its sample size.

    Raises:
        NormsError: no rows, or the slug is taken by other content.
    """
    if not rows:
        raise NormsError(f"{slug}: no norms to store")
    digest = norms_digest(slug, rows)
    existing = HumanDataset.objects.filter(content_sha256=digest).first()
    if existing is not None:
        return existing, False
    if HumanDataset.objects.filter(slug=slug).exists():
        raise NormsError(f"a human dataset {slug!r} with other content exists already")
    dataset = HumanDataset.objects.create(
        slug=slug,
        name=name,
        task=task,
        source=source,
        kind=DatasetKind.NORMS,
        content_sha256=digest,
        file_name=file_name,
        licence=licence,
        provenance=provenance,
        n_participants=max((r.n for r in rows if r.n is not None), default=None),
    )
    ScaleNorm.objects.bulk_create(
        [
            ScaleNorm(
                dataset=dataset,
                scale=r.scale,
                group=r.group,
                statistic=r.statistic,
                mean=r.mean,
                sd=r.sd,
                n=r.n,
                source=r.source,
            )
            for r in rows
        ]
    )
    return dataset, True


@dataclass
class PsychoBenchImport:
    """What `import_psychobench` did, per instrument."""

    versions: list = field(default_factory=list)  # (TaskVersion, created)
    datasets: list = field(default_factory=list)  # (HumanDataset, created)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def import_psychobench(*, path: Path) -> PsychoBenchImport:
    """Turn PsychoBench's ``questionnaires.json`` into questionnaire tasks with norms.

    The whole file is checked first; then every task version and norms dataset is
    written in one transaction. Importing the same file again creates nothing.

    Raises:
        NormsError: an unreadable file or any invalid instrument (nothing is written).
        SpecError: an instrument whose prompt cannot be rendered (nothing is written).
    """
    from benchmark.services.tasks import create_version, expand_spec

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NormsError(f"{path}: cannot read ({exc})") from None
    parsed = parse_questionnaires(text, str(path))
    specs = [expand_spec(i.spec, f"{path}: {i.name}") for i in parsed.instruments]
    result = PsychoBenchImport(skipped=parsed.skipped)
    with transaction.atomic():
        for instrument, spec in zip(parsed.instruments, specs, strict=True):
            version, created = create_version(spec, source_path=str(path))
            result.versions.append((version, created))
            result.datasets.append(
                create_norms_dataset(
                    task=version.task,
                    slug=f"{spec.slug}-norms",
                    name=f"{instrument.name} norms (PsychoBench)",
                    rows=instrument.norms,
                    source=DatasetSource.IMPORTED,
                    licence=LICENCE,
                    provenance="Human norms per group as listed in PsychoBench's "
                    "questionnaires.json, taken from each instrument's publications.",
                    file_name=Path(path).name,
                )
            )
    return result


def import_norms_csv(
    *,
    task_slug: str,
    path: Path,
    slug: str = "",
    name: str = "",
    licence: str = "",
    provenance: str = "",
) -> tuple[HumanDataset, bool]:
    """Store a norms CSV of your own for a questionnaire task already loaded.

    For instruments whose items or norms may not be redistributed: the task's YAML and
    its norms stay on your machine (``load_tasks FILE``, then this).

    Args:
        task_slug: the questionnaire task; its newest version's scales are the known ones.
        path: a CSV ``scale,group,statistic,mean,sd,n,source`` (`benchmark.norms`).
        slug: the dataset's slug (default ``<task>-<file stem>``).
        name: its display name (default from the file name).
        licence: the licence of the norms, as stated by their source.
        provenance: where they come from.

    Returns:
        The dataset and whether it was created now (the same file again creates nothing).

    Raises:
        NormsError: no such task, a task without scales, an unreadable file, a bad slug, or
            any row `benchmark.norms.read_norms_csv` refuses (nothing is written).
    """
    task = Task.objects.filter(slug=task_slug).first()
    if task is None:
        raise NormsError(f"no task {task_slug!r}: load its YAML file first (load_tasks FILE)")
    version = task.latest_version
    if version is None or not version.spec.get("scales"):
        raise NormsError(f"task {task_slug!r} has no scales: norms need a questionnaire")
    path = Path(path)
    try:
        rows = read_norms_csv(path, set(version.spec["scales"]))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NormsError(f"{path}: cannot read ({exc})") from None
    slug = slug or slugify(f"{task.slug}-{path.stem}")[:100]
    try:
        validate_slug(slug)
    except ValidationError:
        raise NormsError(f"slug {slug!r}: use letters, digits, '-' and '_' only") from None
    given = {"slug": slug, "name": name, "licence": licence, "provenance": provenance}
    for what, value in given.items():
        most = HumanDataset._meta.get_field(what).max_length  # None: a text field
        if (most and len(value) > most) or "\x00" in value:
            limit = f"at most {most} characters and " if most else ""
            raise NormsError(f"{what}: {limit}no NUL character")
    return create_norms_dataset(
        task=task,
        slug=slug,
        name=name or f"{task.title or task.slug}: norms from {path.name}"[:200],
        rows=rows,
        source=DatasetSource.IMPORTED,
        licence=licence,
        provenance=provenance,
        file_name=path.name,
    )
