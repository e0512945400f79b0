"""First-person alignment: models answering as participants, against people's answers.

Per run and metric: the observed mean distance over the items both hold, its bootstrap
percentile interval (people and items resampled), the bias-corrected estimate with its
calibrated interval, and the population reference (what a model that is the population
would score at this sample size). Per item: each distance and the item's reference.
For questionnaires with individual answers: where the model's scale score falls among
people's (percentile, z).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.reports import plots
from scoring.reports.base import Section, interval, rounded
from scoring.reports.scales import percentile_table
from scoring.stats.alignment import alignment, item_distances
from scoring.stats.reference import corrected_alignment, population_reference
from scoring.stats.scales import position, scale_scores


def metrics_for(items) -> list[str]:
    """JS and TV always; W1 over the scale range where options carry ordered values."""
    ordinal = all(items.values.get(k) for k in items.keys)
    return ["js", "tv", "w1"] if ordinal else ["js", "tv"]


def _common(human, model):
    keys = [k for k in human.keys if k in set(model.keys)]
    h = [human.keys.index(k) for k in keys]
    m = [model.keys.index(k) for k in keys]
    return keys, h, m


def _human_part(human, rows):
    """The human data restricted to some items, in the shape the statistics take."""
    if human.answers is not None:
        return {"human": human.answers[:, rows], "n_options": human.counts.shape[1]}
    return {"human": human.counts[rows], "item_n": human.item_n[rows]}


def model_scale_scores(items, model) -> dict[str, float]:
    """The model's expected scale scores: mean over a scale's items of the keyed mean answer."""
    out: dict[str, list[float]] = {}
    for i, key in enumerate(model.keys):
        values = np.asarray(items.values[key])
        mean = float(model.dist[i][: len(values)] @ values)
        if items.reverse[key]:
            mean = items.low + items.high - mean
        out.setdefault(items.scales[key], []).append(mean)
    return {scale: float(np.mean(v)) for scale, v in sorted(out.items())}


def human_scale_scores(items, human) -> dict[str, np.ndarray]:
    """Every respondent's scale scores (mean keyed answer, half the items at least)."""
    columns = []
    for i, k in enumerate(human.keys):
        answers = human.answers[:, i]
        points = np.asarray(items.values[k], dtype=float)
        columns.append(np.where(answers >= 0, points[np.clip(answers, 0, None)], np.nan))
    values = np.stack(columns, axis=1)
    keys: dict[str, list] = {}
    for i, k in enumerate(human.keys):
        keys.setdefault(items.scales[k], []).append((i, -1 if items.reverse[k] else 1))
    return scale_scores(values, keys, low=items.low, high=items.high)


def first_person(runs, human, items, params, progress=None) -> Section:
    """The first-person section for participant runs of one task against one dataset.

    Args:
        runs: ``[(RunInfo, ModelItems)]`` of participant runs on the task.
        human: `HumanItems` of the dataset.
        items: `ItemSet` of the task version.
        params: report parameters (``resamples``, ``seed``, ``confidence``).
        progress: called with a share 0–1 after each run.
    """
    resamples, seed = params["resamples"], params["seed"]
    confidence = params["confidence"]
    section = Section(
        "first_person",
        f"First-person alignment: {runs[0][0].task} against {human.dataset}",
    )
    metrics = metrics_for(items)
    overall, per_item, placement = [], [], []
    plot_models = {}
    for n, (info, model) in enumerate(runs):
        keys, h, m = _common(human, model)
        part = _human_part(human, h)
        dist = model.dist[m][:, : human.counts.shape[1]]
        values = np.asarray(items.values[keys[0]]) if "w1" in metrics else None
        samples = model.samples
        row = {"run": info.id, "model": info.label, "items": len(keys), "path": model.path}
        item_cols = {}
        # One set of resamples for every metric (each as its single-metric call gives).
        boots = alignment(
            model=dist,
            metric=metrics,
            values=values,
            model_samples=samples,
            resamples=resamples,
            confidence=confidence,
            seed=seed,
            **part,
        )
        for metric in metrics:
            kw = {"metric": metric, "values": values, **part}
            boot = boots[metric]
            # Items resampled too, so both intervals cover the choice of items.
            corrected = corrected_alignment(
                model=dist,
                model_samples=samples,
                resample_items=True,
                resamples=min(resamples, 400),
                confidence=confidence,
                seed=seed,
                **kw,
            )
            ref = population_reference(
                model_samples=samples, replicates=min(resamples, 500), seed=seed, **kw
            )
            counts = human.counts[h]
            item_cols[metric] = item_distances(counts, dist, metric, values)
            item_cols[f"{metric}_reference"] = ref.per_item
            row[metric] = {
                "observed": interval(boot),
                "corrected": {
                    "value": rounded(corrected.corrected),
                    "low": rounded(corrected.low),
                    "high": rounded(corrected.high),
                },
                "population_reference": {
                    "value": rounded(ref.value),
                    "low": rounded(ref.low),
                    "high": rounded(ref.high),
                },
            }
        overall.append(row)
        for i, key in enumerate(keys):
            per_item.append(
                {
                    "run": info.id,
                    "model": info.label,
                    "item": key,
                    "human_n": rounded(human.counts[h[i]].sum(), 3),
                    **{c: rounded(v[i]) for c, v in item_cols.items()},
                }
            )
        plot_models[info.label] = model.dist[m]
        if human.answers is not None and items.kind == "questionnaire":
            people = human_scale_scores(items, human)
            sub = type(model)(
                keys=keys,
                dist=dist,
                samples=samples,
                unparsed=model.unparsed,
                path=model.path,
                per_item_n=model.per_item_n[m],
            )
            for scale, score in model_scale_scores(items, sub).items():
                pos = position(score, people[scale])
                placement.append(
                    {
                        "run": info.id,
                        "model": info.label,
                        "scale": scale,
                        "scale_name": (items.spec_scales.get(scale) or {}).get("name", scale),
                        "construct": (items.spec_scales.get(scale) or {}).get("construct"),
                        "score": rounded(score),
                        "percentile": rounded(pos.percentile),
                        "z": rounded(pos.z),
                    }
                )
        if progress:
            progress((n + 1) / len(runs))
    section.summary = {
        "task": runs[0][0].task,
        "dataset": human.dataset,
        "people": human.people,
        "metrics": metrics,
        "runs": overall,
        "scale_placement": placement,
    }
    flat = []
    for row in overall:
        base = {k: row[k] for k in ("run", "model", "items", "path")}
        for metric in metrics:
            r = row[metric]
            flat.append(
                {
                    **base,
                    "metric": metric,
                    "observed": r["observed"]["value"],
                    "percentile_low": r["observed"]["low"],
                    "percentile_high": r["observed"]["high"],
                    "corrected": r["corrected"]["value"],
                    "corrected_low": r["corrected"]["low"],
                    "corrected_high": r["corrected"]["high"],
                    "population_reference": r["population_reference"]["value"],
                }
            )
    section.tables = {"first_person_models": pd.DataFrame(flat)}
    section.tables["first_person_items"] = pd.DataFrame(per_item)
    if placement:
        section.tables["scale_placement"] = pd.DataFrame(placement).fillna({"construct": ""})
        section.tables["scale_percentiles"] = percentile_table(placement, items.spec_scales)
    human_p = human.counts / human.counts.sum(axis=1, keepdims=True)
    first_keys = [k for k in human.keys if all(k in mi.keys for _, mi in runs)]
    if first_keys:
        section.plots["first_person_items"] = plots.item_distributions(
            first_keys,
            [items.options[k] for k in first_keys],
            human_p[[human.keys.index(k) for k in first_keys]],
            {
                info.label: model.dist[[model.keys.index(k) for k in first_keys]]
                for info, model in runs
            },
        )
    js = [r["js"] for r in overall]
    section.plots["first_person_reference"] = plots.reference_band(
        [r["model"] for r in overall],
        [x["corrected"]["value"] for x in js],
        [x["corrected"]["low"] for x in js],
        [x["corrected"]["high"] for x in js],
        js[0]["population_reference"]["value"],
        js[0]["population_reference"]["low"],
        js[0]["population_reference"]["high"],
        "JS",
    )
    return section
