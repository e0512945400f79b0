"""ORM rows → numpy arrays and pandas frames: the only module that knows both.

Report sections (`scoring.reports`) and the statistics (`scoring.stats`) never touch the
database; everything they read comes from here, in plain dataclasses.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from benchmark.models import HumanDataset, Item, ModelResponse, ModelRun, ScoringMode
from scoring.reports.data import HumanItems, IndividualPredictions, ItemSet, ModelItems, RunInfo

__all__ = ["HumanItems", "IndividualPredictions", "ItemSet", "ModelItems", "RunInfo"]


def item_set(version) -> ItemSet:
    """The items of a task version (`Item` rows) as plain lists and dicts."""
    items = list(Item.objects.filter(version=version).order_by("position"))
    spec = version.spec
    scale = spec.get("response_scale") or {}
    return ItemSet(
        keys=[i.key for i in items],
        options={i.key: [o["key"] for o in i.options] for i in items},
        values={
            i.key: (
                [float(o["value"]) for o in i.options]
                if i.options and all(o.get("value") is not None for o in i.options)
                else None
            )
            for i in items
        },
        scales={i.key: i.scale for i in items},
        reverse={i.key: i.reverse for i in items},
        kind=spec["kind"],
        low=scale.get("min"),
        high=scale.get("max"),
        spec_scales=spec.get("scales") or {},
    )


def run_info(run: ModelRun) -> RunInfo:
    """The run's identity and provenance, as the report prints it."""
    e = run.endpoint
    variant = "" if run.prompt_variant == "neutral" else f" [{run.prompt_variant}]"
    return RunInfo(
        id=run.pk,
        label=f"{e.name}{variant}",
        endpoint=e.name,
        provider=e.provider,
        model=e.model,
        revision=e.revision,
        base_model=e.base_model.name if e.base_model_id else None,
        post_trained=e.post_trained,
        release_date=e.release_date.isoformat() if e.release_date else None,
        task=run.task_version.task.slug,
        task_version=run.task_version.number,
        mode=run.mode,
        scoring_mode=run.scoring_mode,
        prompt_variant=run.prompt_variant,
        prompt_hash=run.prompt_hash,
        with_profile=run.with_profile,
        seed=run.seed,
        samples_per_item=run.samples_per_item,
        dataset=run.dataset.slug if run.dataset_id else None,
    )


def run_digest(run: ModelRun) -> str:
    """sha256 over the run's responses (item, sample, answer, distribution, log-prob).

    It changes when a response is added, removed or rewritten, so a report can tell
    that a run it read has changed since.
    """
    sha = hashlib.sha256()
    rows = ModelResponse.objects.filter(run=run).order_by("item_key", "sample_index")
    for key, sample, answer, dist, logprob, details in rows.values_list(
        "item_key", "sample_index", "answer", "distribution", "logprob", "details"
    ):
        spans = details.get("span_logprobs") if isinstance(details, dict) else None
        line = json.dumps([key, sample, answer, dist, logprob, spans], sort_keys=True)
        sha.update(line.encode() + b"\n")
    return sha.hexdigest()


def model_items(run: ModelRun, items: ItemSet) -> ModelItems:
    """The run's distribution per item over the item's options, in ``items`` order.

    Exact runs carry a distribution per item; sampled participant runs count the parsed
    answers over samples; sampled population predictions average the parsed stated
    distributions. Items without any usable response are left out.
    """
    grouped: dict[str, list] = {}
    total = unparsed = 0
    for key, answer, dist in ModelResponse.objects.filter(run=run).values_list(
        "item_key", "answer", "distribution"
    ):
        total += 1
        if run.mode == "predict_population" or run.scoring_mode == ScoringMode.EXACT:
            if not dist:
                unparsed += 1
                continue
            grouped.setdefault(key, []).append(dist)
        elif answer:
            grouped.setdefault(key, []).append({answer: 1.0})
        else:
            unparsed += 1
    keys, rows, counts = [], [], []
    for key in items.keys:
        if key not in grouped:
            continue
        opts = items.options[key]
        mat = np.array([[float(d.get(o, 0.0)) for o in opts] for d in grouped[key]])
        row = mat.sum(axis=0)
        if row.sum() <= 0:
            continue
        keys.append(key)
        rows.append(row / row.sum())
        counts.append(len(mat))
    width = max((len(items.options[k]) for k in keys), default=0)
    dist = np.zeros((len(keys), width))
    for i, row in enumerate(rows):
        dist[i, : len(row)] = row
    exact = run.scoring_mode == ScoringMode.EXACT
    return ModelItems(
        keys=keys,
        dist=dist,
        samples=None if exact else run.samples_per_item,
        unparsed=unparsed / total if total else 0.0,
        path="exact" if exact else "sampled",
        per_item_n=np.array(counts, dtype=float),
    )


def individual_predictions(run: ModelRun, items: ItemSet, human: HumanItems):
    """A ``predict_individual`` run's predictions next to the answers people gave.

    Rows follow ``human.keys`` (the items of the human counts); a (person, item) the
    person did not answer, or an item the counts do not hold, is left out.
    """
    from benchmark.models import Transcript

    row_of = {k: i for i, k in enumerate(human.keys)}
    width = human.counts.shape[1]
    exact = run.scoring_mode == ScoringMode.EXACT
    grouped: dict[tuple[int, str], np.ndarray] = {}
    total = unparsed = 0
    for entry, answer, dist in ModelResponse.objects.filter(run=run).values_list(
        "item_key", "answer", "distribution"
    ):
        pid, key = entry.split(":", 1)
        if key not in row_of:
            continue
        total += 1
        row = grouped.setdefault((int(pid), key), np.zeros(width))
        options = items.options[key]
        if exact and dist:
            row[: len(options)] += [float(dist.get(o, 0.0)) for o in options]
        elif not exact and answer in options:
            row[options.index(answer)] += 1
        else:
            unparsed += 1
    people = {pid for pid, _ in grouped}
    found = Transcript.objects.filter(pk__in=people).values_list("pk", "answers", "participant")
    answers = {pk: a for pk, a, _ in found}
    names = {pk: name for pk, _, name in found}
    item, person, predicted, chosen = [], [], [], []
    for (pid, key), row in sorted(grouped.items(), key=lambda kv: (kv[0][0], row_of[kv[0][1]])):
        given = (answers.get(pid) or {}).get(key)
        options = items.options[key]
        if given is None or str(given) not in options:
            continue
        if not exact:
            row = row.copy()
            row[: len(options)] += 1.0  # one added to every option of a sampled count
        if row.sum() <= 0:
            continue
        item.append(row_of[key])
        person.append(pid)
        predicted.append(row / row.sum())
        chosen.append(options.index(str(given)))
    return IndividualPredictions(
        keys=list(human.keys),
        item=np.array(item, dtype=int),
        person=np.array(person, dtype=int),
        predicted=np.array(predicted, dtype=float).reshape(len(item), width),
        answer=np.array(chosen, dtype=int),
        unparsed=unparsed / total if total else 0.0,
        path="exact" if exact else "sampled",
        names={pid: names[pid] for pid in set(person)},
    )


def human_items(dataset: HumanDataset, items: ItemSet) -> HumanItems:
    """Individual answers (transcripts' ``answers``) or item-level proportions of a dataset.

    Item-level rows (`ItemDistribution`) use ``data.effective_n`` when the dataset
    carries it (e.g. choices13k, whose rates are means over people who chose several
    times), else ``n``.
    """
    width = max((len(items.options[k]) for k in items.keys), default=0)
    dists = {d.item_key: d for d in dataset.item_distributions.all()}
    if dists:
        keys = [k for k in items.keys if k in dists]
        counts = np.zeros((len(keys), width))
        sizes = np.zeros(len(keys))
        for i, key in enumerate(keys):
            d = dists[key]
            size = float((d.data or {}).get("effective_n") or d.n)
            sizes[i] = size
            for j, o in enumerate(items.options[key]):
                counts[i, j] = float(d.proportions.get(o, 0.0)) * size
        return HumanItems(
            dataset=dataset.slug,
            content_sha256=dataset.content_sha256,
            keys=keys,
            answers=None,
            counts=counts,
            item_n=sizes,
            people=dataset.n_participants,
        )
    index = {k: {o: j for j, o in enumerate(items.options[k])} for k in items.keys}
    rows = [a for a in dataset.transcripts.order_by("line").values_list("answers", flat=True) if a]
    present = [k for k in items.keys if any(k in a for a in rows)]
    answers = np.full((len(rows), len(present)), -1, dtype=np.int64)
    for p, a in enumerate(rows):
        for i, key in enumerate(present):
            value = a.get(key)
            if value is not None and str(value) in index[key]:
                answers[p, i] = index[key][str(value)]
    counts = np.zeros((len(present), width))
    for i in range(len(present)):
        col = answers[:, i]
        counts[i] = np.bincount(col[col >= 0], minlength=width)[:width]
    return HumanItems(
        dataset=dataset.slug,
        content_sha256=dataset.content_sha256,
        keys=present,
        answers=answers,
        counts=counts,
        item_n=None,
        people=len(rows),
    )


def likelihood_frame(run: ModelRun) -> pd.DataFrame:
    """One row per participant of a likelihood run: log-likelihood, spans, experiment."""
    from benchmark.models import Transcript

    rows = list(
        ModelResponse.objects.filter(run=run)
        .order_by("item_key")
        .values_list("item_key", "logprob", "details")
    )
    ids = [int(key.split(":", 1)[1]) for key, _, _ in rows]
    experiments = dict(Transcript.objects.filter(pk__in=ids).values_list("pk", "experiment"))
    return pd.DataFrame(
        {
            "participant": [d.get("participant", "") for _, _, d in rows],
            "experiment": [experiments.get(i, "") for i in ids],
            "log_likelihood": [float(lp) for _, lp, _ in rows],
            "responses": [len(d.get("span_logprobs", [])) for _, _, d in rows],
        }
    )


def choices_per_response(version) -> int | None:
    """How many options a participant chose from at each response, if fixed for the task."""
    spec = version.spec
    if spec["kind"] == "transcript":
        return spec.get("choices_per_response")
    options = spec.get("options") or []
    if options:
        return len(options)
    scale = spec.get("response_scale")
    return scale["max"] - scale["min"] + 1 if scale else None


def norm_positions(run: ModelRun, dataset: HumanDataset) -> list[dict] | str:
    """A participant run's scale scores against a norms dataset, as plain rows.

    Returns the reason instead when the run cannot be scored on every scale (e.g. a run
    of the first few items only).
    """
    from scoring.norms import ScaleScoreError, scale_positions

    try:
        positions = scale_positions(run=run, dataset=dataset)
    except ScaleScoreError as exc:
        return str(exc)
    keys = ("scale", "statistic", "score", "group", "mean", "sd", "n", "z", "percentile")
    return [{**{k: getattr(p, k) for k in keys}, "source": p.source} for p in positions]
