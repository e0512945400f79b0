"""Human datasets: Psych-201 import (validate everything, then one transaction) and export.

`import_psych201` and `export_psych201` are the entry points; the admin upload, the
management commands and the bundled-task loader all go through them.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TextIO

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from benchmark import psych201
from benchmark.models import DatasetSource, HumanDataset, Task, Transcript
from benchmark.rendering import Turn, render_transcript, spec_items
from benchmark.specs import spec_from_json

BATCH = 1000
SLUG_MAX = HumanDataset._meta.get_field("slug").max_length
SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]+$")
# File names that say nothing about the data (Psych-201 names every file prompts.jsonl).
GENERIC_STEMS = {"prompts", "data", "export", "upload", "file"}


def _default_slug(source, file_name: str, experiment: str) -> str:
    """A slug from the file name, else its folder (``psych201_x`` → ``x``), else the experiment."""
    stem = re.sub(r"(\.jsonl)?(\.gz|\.zip)?$", "", Path(file_name).name, flags=re.IGNORECASE)
    candidates = [stem]
    if isinstance(source, str | os.PathLike):
        folder = Path(source).resolve().parent.name
        candidates.append(re.sub(r"^psych-?[12]01[-_]", "", folder, flags=re.IGNORECASE))
    # Experiments are often paths (``dezfouli/…/choices.csv``): the first part names it.
    candidates.append(experiment.strip("/").split("/")[0])
    for candidate in candidates:
        if candidate.lower() not in GENERIC_STEMS and (slug := slugify(candidate)[: SLUG_MAX - 10]):
            return slug
    return "psych201"


def _unique_slug(base: str) -> str:
    taken = set(HumanDataset.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def _check_slug(slug: str) -> None:
    if not SLUG_RE.match(slug) or len(slug) > SLUG_MAX:
        raise ValueError(
            f"{slug!r} is not a valid slug (letters, digits, '-' and '_', at most {SLUG_MAX})"
        )
    if HumanDataset.objects.filter(slug=slug).exists():
        raise ValueError(f"a dataset with the slug {slug!r} exists already")


def _batches(records, size: int):
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def transcript_from(dataset: HumanDataset, record: psych201.Record) -> Transcript:
    """The (unsaved) transcript row of one parsed Psych-201 participant."""
    return Transcript(
        dataset=dataset,
        line=record.line,
        participant=record.participant,
        experiment=record.experiment,
        text=record.text,
        spans=[list(s) for s in record.spans],
        rts=record.rts,
        profile=record.profile,
        extra=record.extra,
    )


def import_psych201(
    *,
    source: psych201.Source,
    file_name: str,
    slug: str | None = None,
    name: str | None = None,
    task: Task | None = None,
    source_kind: str = DatasetSource.IMPORTED,
    licence: str = "",
    provenance: str = "",
) -> tuple[HumanDataset, bool]:
    """Import a Psych-201 file as a human dataset, or find the identical earlier import.

    The whole file is validated first (streamed, one line in memory at a time); the
    dataset and all its transcripts are then written in one transaction, so a bad line
    leaves nothing behind. The identity of a file is the sha256 of its decompressed
    content: the same data gzipped, zipped or plain is one dataset.

    Args:
        source: a path or a binary file object (e.g. a Django ``UploadedFile``).
        file_name: the name (decides plain / .gz / .zip; stored on the dataset).
        slug: the dataset's slug; derived from the file name or experiment when not given.
        name: a human-readable name (default: the first participant's experiment).
        task: the task the data belongs to, if any.
        source_kind: bundled, imported or collected.
        licence: licence statement.
        provenance: where the data came from.

    Returns:
        The dataset, and whether it was created (False: the same content was there).

    Raises:
        psych201.Psych201Error: the file is invalid (the message names the line).
        ValueError: the requested slug is invalid or taken by another dataset.
    """
    with psych201.reusable(source) as reread:
        return _import(
            reread,
            file_name,
            slug=slug,
            name=name,
            task=task,
            source_kind=source_kind,
            licence=licence,
            provenance=provenance,
        )


def _import(source, file_name, *, slug, name, task, source_kind, licence, provenance):
    summary = psych201.scan(source, file_name)
    existing = HumanDataset.objects.filter(content_sha256=summary.sha256).first()
    if existing is not None:
        return existing, False
    if slug:
        _check_slug(slug)
    try:
        with transaction.atomic():
            dataset = HumanDataset.objects.create(
                slug=slug or _unique_slug(_default_slug(source, file_name, summary.experiment)),
                name=(name or summary.experiment or Path(file_name).name)[:200],
                task=task,
                source=source_kind,
                content_sha256=summary.sha256,
                file_name=Path(file_name).name[:300],
                licence=licence,
                provenance=provenance,
                n_participants=summary.participants,
            )
            digest = hashlib.sha256()
            records = psych201.iter_records(source, file_name, digest)
            for batch in _batches(records, BATCH):
                Transcript.objects.bulk_create([transcript_from(dataset, r) for r in batch])
            if digest.hexdigest() != summary.sha256:
                raise psych201.Psych201Error(f"{file_name} changed while it was being imported")
    except IntegrityError:
        # Someone imported the same content (or took the slug) since we looked.
        existing = HumanDataset.objects.filter(content_sha256=summary.sha256).first()
        if existing is not None:
            return existing, False
        raise ValueError("the dataset slug was taken while importing; try again") from None
    return dataset, True


def export_psych201(*, dataset: HumanDataset, out: TextIO) -> int:
    """Write a dataset as Psych-201 JSONL, one line per participant, in import order.

    Imported files come back out byte for byte (same key order and escaping).
    Item-level datasets (answers without text, e.g. questionnaires) are rendered with
    the task's latest spec, in the same format as a model's or a study's sessions.

    Args:
        dataset: the dataset to write.
        out: a text stream; every line ends with a newline.

    Returns:
        The number of lines written.

    Raises:
        ValueError: an item-level dataset without a task version to render it.
    """
    spec = items = None
    count = 0
    for t in dataset.transcripts.order_by("line").iterator(chunk_size=BATCH):
        text = t.text
        if not text and t.answers:
            if spec is None:
                version = dataset.task.latest_version if dataset.task else None
                if version is None:
                    raise ValueError(
                        f"dataset {dataset.slug} holds item answers but no task version "
                        "to render them with"
                    )
                spec = spec_from_json(version.spec)
                items = spec_items(spec)
            turns = [
                Turn(item_key, str(answer))
                for item_key, answer in t.answers.items()
                if answer is not None
            ]
            text = render_transcript(spec, turns, profile=None, items=items).text
        out.write(transcript_line(t, text=text) + "\n")
        count += 1
    return count


def transcript_line(transcript: Transcript, *, text: str | None = None) -> str:
    """One transcript as its Psych-201 line (no newline); ``text`` replaces a rendered one."""
    return psych201.to_json_line(
        text=transcript.text if text is None else text,
        experiment=transcript.experiment,
        participant=transcript.participant,
        rts=transcript.rts,
        profile=transcript.profile,
        extra=transcript.extra,
    )


class _Digest:
    """A text stream that only hashes what is written to it."""

    def __init__(self):
        self.sha = hashlib.sha256()

    def write(self, text: str) -> None:
        self.sha.update(text.encode())


def content_digest(dataset: HumanDataset) -> str:
    """sha256 of the dataset's Psych-201 export: what its content_sha256 should say now."""
    digest = _Digest()
    export_psych201(dataset=dataset, out=digest)
    return digest.sha.hexdigest()
