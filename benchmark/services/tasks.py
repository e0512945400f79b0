"""Loading task specs into immutable task versions, with their bundled human data."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.db.models import Max

from benchmark import loaders
from benchmark.models import (
    DatasetSource,
    HumanDataset,
    Item,
    ItemDistribution,
    Supersession,
    Task,
    TaskVersion,
    Transcript,
)
from benchmark.norms import read_norms_csv
from benchmark.rendering import RenderError, Turn, render_prompt, render_transcript, spec_items
from benchmark.specs import SpecError, load_spec_file, spec_hash

log = logging.getLogger(__name__)

TASKS_DIR = Path(__file__).resolve().parent.parent / "tasks"
BATCH = 2000
# Bumped when a bundled loader stores different rows from the same file, so that a
# database loaded by an older release gets the new rows (and a new content digest).
LOADER_FORMAT = {"choices13k": 2}

# Versions that earlier releases loaded from bundled files and that must not be used:
# `load_tasks` marks them superseded by the task's newest version.
KNOWN_SUPERSEDED = {
    "a73b44d5fa34f5a1e6e31aeed3dcdcf74ac9e8aa15eeada403c813e4850fbed8": (
        "203 of its 205 items showed the gambles of another choices13k problem (the "
        "problems file was read by problem number instead of by row); fixed in the next version"
    ),
    "8935f58b02fd8ba1924273c8b46577a422d3da97f10372201f40cd096544775c": (
        "almost all of its items showed the gambles of another choices13k problem (the "
        "problems file was read by problem number instead of by row); fixed in the next version"
    ),
    "137e305f3522483bd51e4a2a27ff6fdb3c91683fc0a1478c6e681d8703b746ec": (
        "its instructions described a green button, a grey circle and timed blocks that the "
        "task does not have; the next version describes the task as it runs"
    ),
}


@dataclass
class LoadResult:
    """What loading one spec file did."""

    path: Path
    version: TaskVersion
    created: bool
    datasets_created: list[HumanDataset] = field(default_factory=list)
    seconds: float = 0.0


def discover_task_files(root: Path = TASKS_DIR) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` under ``root`` (one folder per family), sorted."""
    return sorted(p for p in root.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())


def expand_spec(spec, path: str = "<spec>"):
    """Fill in items that a spec generates from data (``items_from``) and check its templates.

    The expanded spec is what gets hashed and stored, so a version pins its exact items.

    Raises:
        SpecError: a data file is missing or a template cannot be rendered.
    """
    if getattr(spec, "items_from", None) is not None and not spec.items:
        source = spec.items_from
        try:
            items = loaders.choices13k_items(source.file, source.subset, source.seed)
        except ValueError as exc:
            raise SpecError(path, [(None, "items_from.file", str(exc))]) from None
        spec = type(spec).model_validate({**spec.model_dump(), "items": items})
    if spec.prompt is not None:
        try:
            items = spec_items(spec)
            if items:  # render one trial through both code paths to catch template errors now
                first = items[0]
                render_prompt(spec, [], first.key, items=items[:1])
                feedback = _feedback_for(spec, first.options[0].key)
                render_transcript(
                    spec, [Turn(first.key, first.options[0].key, feedback)], items=items[:1]
                )
        except (RenderError, ValueError) as exc:
            raise SpecError(path, [(None, "prompt.trial", str(exc))]) from None
    return spec


def _feedback_for(spec, answer: str) -> dict:
    if spec.kind != "sequential":
        return {}
    from benchmark.rendering import environment_for

    return environment_for(spec).feedback(0, answer)


def prepare(paths: list[Path]) -> list[tuple[Path, object]]:
    """Validate and expand every file before anything is written.

    Raises:
        SpecError: one or more files are invalid; the message lists every problem.
    """
    prepared, problems = [], []
    for path in paths:
        try:
            spec = expand_spec(load_spec_file(path), str(path))
            _check_norms(spec, str(path))
            prepared.append((path, spec))
        except SpecError as exc:
            problems.append(exc)
    if problems:
        raise SpecError(
            "; ".join(e.path for e in problems), [p for e in problems for p in _qualified(e)]
        )
    slugs = [spec.slug for _, spec in prepared]
    if dupes := sorted({s for s in slugs if slugs.count(s) > 1}):
        raise SpecError(
            ", ".join(str(p) for p, _ in prepared), [(None, "slug", f"used twice: {dupes}")]
        )
    return prepared


def _check_norms(spec, path: str) -> None:
    """Read every norms file a spec names, so a bad one stops the load before any write."""
    for index, ref in enumerate(spec.human_data):
        if ref.loader == "norms_csv":
            if spec.kind != "questionnaire":
                raise SpecError(path, [(None, f"human_data[{index}].loader", "norms need scales")])
            try:
                read_norms_csv(loaders.data_path(ref.file), set(spec.scales))
            except ValueError as exc:  # NormsError too
                raise SpecError(path, [(None, f"human_data[{index}].file", str(exc))]) from None


def _qualified(exc: SpecError):
    # Each problem keeps its own file when several files are reported together.
    return [p if len(p) == 4 else (exc.path, *p) for p in exc.problems]


@transaction.atomic
def create_version(spec, *, source_path: str = "") -> tuple[TaskVersion, bool]:
    """Store a validated, expanded spec as a task version (or find the identical one).

    Args:
        spec: an expanded spec model.
        source_path: the file it came from, shown in the admin.

    Returns:
        The version and whether it was created.
    """
    digest = spec_hash(spec)
    task, _ = Task.objects.get_or_create(
        slug=spec.slug,
        defaults={"family": spec.family, "title": spec.title, "kind": spec.kind},
    )
    existing = TaskVersion.objects.filter(spec_hash=digest).first()
    if existing is not None:
        return existing, False
    # The task row is a label: it follows the newest spec; versions keep their own copy.
    Task.objects.filter(pk=task.pk).update(
        family=spec.family, title=spec.title, kind=spec.kind, description=spec.description
    )
    number = (task.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = TaskVersion.objects.create(
        task=task,
        number=number,
        spec_hash=digest,
        spec=spec.model_dump(mode="json"),
        source_path=source_path,
    )
    Item.objects.bulk_create(
        [
            Item(
                version=version,
                key=item.key,
                position=position,
                text=item.text,
                options=[o.model_dump(mode="json") for o in item.options],
                scale=item.scale,
                reverse=item.reverse,
                data=item.fields,
            )
            for position, item in enumerate(spec_items(spec))
        ],
        batch_size=BATCH,
    )
    return version, True


def load_task_file(path: Path, spec=None) -> LoadResult:
    """Load one task file and its bundled human data; loading it again creates nothing."""
    started = time.perf_counter()
    if spec is None:
        spec = expand_spec(load_spec_file(path), str(path))
    version, created = create_version(spec, source_path=_relative(path))
    mark_known_superseded(task=version.task)
    datasets = [
        dataset
        for ref in spec.human_data
        if (dataset := load_bundled_dataset(ref, task=version.task, version=version)) is not None
    ]
    return LoadResult(path, version, created, datasets, time.perf_counter() - started)


def load_tasks(paths: list[Path] | None = None) -> list[LoadResult]:
    """Validate every file first, then load each (all bundled tasks when ``paths`` is None).

    Raises:
        SpecError: any file is invalid; nothing is written then.
    """
    prepared = prepare(paths if paths is not None else discover_task_files())
    return [load_task_file(path, spec) for path, spec in prepared]


@transaction.atomic
def supersede_version(*, version: TaskVersion, reason: str, by: TaskVersion | None = None):
    """Mark a version as not to be used any more (its rows stay, and so do its runs).

    Args:
        version: the version to mark.
        reason: why, shown wherever the version is shown.
        by: the version that replaces it, if any (another version of the same task).

    Returns:
        The `Supersession` (updated when the version was already marked).

    Raises:
        ValueError: no reason, or ``by`` is the version itself or another task's.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("say why the version is superseded")
    if by is not None and (by.pk == version.pk or by.task_id != version.task_id):
        raise ValueError("a version is superseded by another version of the same task")
    note, _ = Supersession.objects.update_or_create(
        version=version, defaults={"reason": reason, "superseded_by": by}
    )
    return note


def mark_known_superseded(*, task: Task) -> list[Supersession]:
    """Mark this task's versions listed in `KNOWN_SUPERSEDED` (once each)."""
    newest = task.versions.order_by("-number").first()
    notes = []
    for version in task.versions.filter(spec_hash__in=KNOWN_SUPERSEDED, supersession=None):
        by = newest if newest is not None and newest.pk != version.pk else None
        notes.append(
            supersede_version(version=version, reason=KNOWN_SUPERSEDED[version.spec_hash], by=by)
        )
    return notes


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(TASKS_DIR.parent.parent))
    except ValueError:
        return str(path)


# --- bundled human data ---------------------------------------------------------------


def load_bundled_dataset(ref, *, task: Task, version: TaskVersion) -> HumanDataset | None:
    """Import a spec's bundled human dataset unless the same content is already there.

    Returns:
        The dataset when it was created now, else None.
    """
    path = loaders.data_path(ref.file)
    # One data file can back several tasks (choices13k and its full problem set), each
    # with its own dataset of that task's items: the slug is part of the identity.
    fmt = LOADER_FORMAT.get(ref.loader)
    prefix = ref.slug.encode() + b"\0" + (f"format {fmt}\0".encode() if fmt else b"")
    digest = hashlib.sha256(prefix + loaders.read_bytes(path)).hexdigest()
    if ref.loader != "psych201" and HumanDataset.objects.filter(content_sha256=digest).exists():
        return None
    common = {
        "slug": ref.slug,
        "name": ref.name,
        "task": task,
        "source": DatasetSource.BUNDLED,
        "file_name": ref.file,
        "licence": ref.licence,
        "provenance": ref.provenance,
    }
    if ref.loader == "choices13k":
        return _load_distributions(ref, path, digest, common=common, version=version)
    if ref.loader == "norms_csv":
        from benchmark.services.norms import create_norms_dataset

        dataset, created = create_norms_dataset(
            task=task,
            slug=ref.slug,
            name=ref.name,
            rows=read_norms_csv(path, set(version.spec["scales"])),
            source=DatasetSource.BUNDLED,
            licence=ref.licence,
            provenance=ref.provenance,
            file_name=ref.file,
        )
        return dataset if created else None
    if ref.loader == "psych201":
        from benchmark.services.datasets import import_psych201

        dataset, created = import_psych201(
            source=path,
            file_name=path.name,
            slug=ref.slug,
            name=ref.name,
            task=task,
            source_kind=DatasetSource.BUNDLED,
            licence=ref.licence,
            provenance=ref.provenance,
        )
        return dataset if created else None
    with transaction.atomic():
        dataset = HumanDataset.objects.create(content_sha256=digest, **common)
        if ref.loader == "ipip_csv":
            _store_respondents(dataset, ref, version)
        return dataset


def _store_respondents(dataset: HumanDataset, ref, version: TaskVersion) -> None:
    keys = list(version.items.values_list("key", flat=True))
    respondents = loaders.ipip_respondents(
        loaders.data_path(ref.file),
        keys,
        missing=int(ref.options.get("missing", 0)),
        profile_columns=list(ref.options.get("profile_columns", [])),
    )
    Transcript.objects.bulk_create(
        (
            Transcript(
                dataset=dataset,
                line=r.line,
                participant=r.participant,
                experiment=version.task.slug,
                answers=r.answers,
                profile=r.profile,
                extra=r.extra,
            )
            for r in respondents
        ),
        batch_size=BATCH,
    )
    HumanDataset.objects.filter(pk=dataset.pk).update(n_participants=len(respondents))
    dataset.n_participants = len(respondents)


@transaction.atomic
def _load_distributions(ref, path: Path, digest: str, *, common: dict, version: TaskVersion):
    """Store item-level human data, or refresh a dataset an older loader stored.

    A dataset of the same slug with another digest was loaded from the same file by an
    older release: its rows are replaced and its digest changes, so results computed on
    the old rows are recognisably stale.
    """
    old = HumanDataset.objects.select_for_update().filter(slug=ref.slug).first()
    if old is not None:
        old.item_distributions.all().delete()
        old.content_sha256 = digest
        fmt = LOADER_FORMAT[ref.loader]
        old.provenance = f"{ref.provenance}. Rows replaced by loader format {fmt}"
        old.n_participants = None
        old.save(update_fields=["content_sha256", "provenance", "n_participants"])
        _store_distributions(old, path, version)
        return old
    # The files give the people per problem, not how many distinct people took part.
    dataset = HumanDataset.objects.create(content_sha256=digest, n_participants=None, **common)
    _store_distributions(dataset, path, version)
    return dataset


def _store_distributions(dataset: HumanDataset, path: Path, version: TaskVersion) -> None:
    keys = set(version.items.values_list("key", flat=True))
    counts = loaders.choices13k_distributions(path, keys)
    ItemDistribution.objects.bulk_create(
        [
            ItemDistribution(
                dataset=dataset, item_key=c.item_key, n=c.n, proportions=c.proportions, data=c.data
            )
            for c in counts
        ],
        batch_size=BATCH,
    )
