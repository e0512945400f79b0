"""Third-person accuracy: models predicting the human population's answer distribution.

Per ``predict_population`` run: mean over items of 1 − W1/range (OpinionQA; ordinal
items only), of 1 − JS distance, and the correlation of item means (predicted vs human),
each mean with a percentile interval over items resampled; the share of samples that did
not parse and the path that produced the predictions (exact or sampled).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.reports.base import Section, rounded
from scoring.stats.prediction import item_mean_correlation, js_similarity, opinionqa_score


def _mean_interval(values, resamples, confidence, seed) -> dict:
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    draws = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return {"value": rounded(values.mean()), "low": rounded(low), "high": rounded(high)}


def third_person(runs, human, items, params) -> Section:
    """The third-person section for population-prediction runs of one task."""
    section = Section(
        "third_person", f"Third-person accuracy: {runs[0][0].task} against {human.dataset}"
    )
    ordinal = all(items.values.get(k) for k in items.keys)
    rows, per_item = [], []
    human_p = human.counts / human.counts.sum(axis=1, keepdims=True)
    for info, model in runs:
        keys = [k for k in human.keys if k in set(model.keys)]
        if not keys:
            rows.append(
                {
                    "run": info.id,
                    "model": info.label,
                    "items": 0,
                    "path": model.path,
                    "unparsed_share": rounded(model.unparsed),
                    "js_similarity": {"value": None, "low": None, "high": None},
                    "item_mean_correlation": None,
                }
            )
            section.notes.append(
                f"run {info.id}: no prediction parsed ({model.unparsed:.0%} of samples unparsed)."
            )
            continue
        h = human_p[[human.keys.index(k) for k in keys]]
        p = model.dist[[model.keys.index(k) for k in keys]][:, : h.shape[1]]
        values = items.values[keys[0]] if ordinal else None
        jss = js_similarity(p, h)
        row = {
            "run": info.id,
            "model": info.label,
            "items": len(keys),
            "path": model.path,
            "unparsed_share": rounded(model.unparsed),
            "js_similarity": _mean_interval(
                jss, params["resamples"], params["confidence"], params["seed"]
            ),
        }
        opinion = opinionqa_score(p, h, values) if ordinal else None
        if ordinal:
            row["opinionqa"] = _mean_interval(
                opinion, params["resamples"], params["confidence"], params["seed"]
            )
        means_values = values if ordinal else np.arange(1, h.shape[1] + 1)
        row["item_mean_correlation"] = (
            rounded(item_mean_correlation(p, h, means_values)) if len(keys) >= 3 else None
        )
        rows.append(row)
        for i, key in enumerate(keys):
            per_item.append(
                {
                    "run": info.id,
                    "model": info.label,
                    "item": key,
                    "js_similarity": rounded(jss[i]),
                    "opinionqa": rounded(opinion[i]) if ordinal else None,
                }
            )
    if not ordinal:
        section.notes.append("1 − W1/range is not given: the options have no ordered values.")
    section.summary = {"task": runs[0][0].task, "dataset": human.dataset, "runs": rows}
    section.tables["third_person_models"] = pd.DataFrame(
        [
            {
                "run": r["run"],
                "model": r["model"],
                "items": r["items"],
                "path": r["path"],
                "unparsed_share": r["unparsed_share"],
                "js_similarity": r["js_similarity"]["value"],
                "js_similarity_low": r["js_similarity"]["low"],
                "js_similarity_high": r["js_similarity"]["high"],
                "opinionqa": r.get("opinionqa", {}).get("value"),
                "item_mean_correlation": r["item_mean_correlation"],
            }
            for r in rows
        ]
    )
    section.tables["third_person_items"] = pd.DataFrame(per_item)
    return section
