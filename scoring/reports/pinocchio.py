"""Π, the Pinocchio dimension, over the questionnaire runs of several models.

Rows are models (an endpoint, and its prompt variant when it is not neutral: a
"respond as a typical human" run is a row of its own); columns are scales, keyed
``task:scale``. A model's scale score is the mean over the scale's items of its expected
keyed answer. Π is the first principal component of the scale scores standardised
across the rows (`scoring.stats.pinocchio`).

Sign rule: Π is positive for more self-attribution of human-like experience. The
orienting scale is, in order: a scale whose spec says ``orients_pi: true`` (it loads
positively); else the report parameter ``pi_orient`` (``task:scale``, or
``-task:scale`` for a scale keyed the other way, e.g. ``-ipip-big5-50:N``, emotional
stability, when Π should rise with neuroticism); else the loadings sum to a positive
number, and the report says that the sign is arbitrary.

Each row's Π gets a percentile interval from resampling, together, the items within each
scale (the same picks for every row) and, for sampled runs, each item's samples.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from scoring.reports import plots
from scoring.reports.base import Section, interval, rounded
from scoring.reports.first_person import model_scale_scores
from scoring.stats.alignment import multinomial
from scoring.stats.inference import paired_difference, trend
from scoring.stats.pinocchio import item_pi, pinocchio


class PinocchioError(ValueError):
    """Π cannot be computed from this selection."""


def orientation(columns, item_sets, params) -> tuple[int | None, int, str]:
    """(column index, sign, the rule used) for the Π sign."""
    for n, col in enumerate(columns):
        task, scale = col.split(":", 1)
        if (item_sets[task].spec_scales.get(scale) or {}).get("orients_pi"):
            return n, 1, f"scale {col} is marked orients_pi in its task spec"
    wanted = params.get("pi_orient") or ""
    if wanted:
        sign = -1 if wanted.startswith("-") else 1
        name = wanted.lstrip("-+")
        if name not in columns:
            raise PinocchioError(f"pi_orient {wanted!r} names no scale of this report: {columns}")
        return columns.index(name), sign, f"report parameter pi_orient = {wanted}"
    return None, 1, "no orienting scale: loadings made to sum to a positive number (arbitrary)"


def _scores(rows, columns, item_sets, dists) -> np.ndarray:
    matrix = np.zeros((len(rows), len(columns)))
    for r, row in enumerate(rows):
        scores = {}
        for task, model in row["models"].items():
            sub = type(model)(
                keys=model.keys,
                dist=dists[r][task],
                samples=model.samples,
                unparsed=model.unparsed,
                path=model.path,
                per_item_n=model.per_item_n,
            )
            for scale, value in model_scale_scores(item_sets[task], sub).items():
                scores[f"{task}:{scale}"] = value
        matrix[r] = [scores[c] for c in columns]
    return matrix


def pinocchio_section(entries, item_sets, params) -> Section:
    """The Π section.

    Args:
        entries: ``[(RunInfo, ModelItems)]`` of participant runs on questionnaire tasks.
        item_sets: task slug → `ItemSet`.
        params: report parameters (``resamples``, ``seed``, ``confidence``, ``pi_orient``).

    Raises:
        PinocchioError: fewer than two model rows, or no scale every row answered.
    """
    section = Section("pinocchio", "Π, the Pinocchio dimension")
    grouped: dict[str, dict] = {}
    for info, model in entries:
        row = grouped.setdefault(info.label, {"info": info, "models": {}})
        row["models"][info.task] = model
    rows = [grouped[k] for k in sorted(grouped)]
    if len(rows) < 2:
        raise PinocchioError(f"Π needs at least two models (or prompt variants); got {len(rows)}")
    common_tasks = sorted(set.intersection(*(set(r["models"]) for r in rows)))
    if not common_tasks:
        raise PinocchioError("Π: no questionnaire was answered by every model")
    # Items every row answered, per task, so that all rows are scored on the same items.
    keys = {
        t: [k for k in item_sets[t].keys if all(k in r["models"][t].keys for r in rows)]
        for t in common_tasks
    }
    for r in rows:
        r["models"] = {t: _restrict(r["models"][t], keys[t]) for t in common_tasks if keys[t]}
    columns = sorted({f"{t}:{item_sets[t].scales[k]}" for t in common_tasks for k in keys[t]})
    dists = [{t: m.dist for t, m in r["models"].items()} for r in rows]
    matrix = _scores(rows, columns, item_sets, dists)
    index, sign, rule = orientation(columns, item_sets, params)
    result = pinocchio(matrix, orient=index, orient_sign=sign)
    rng = np.random.default_rng(params["seed"])
    boots = []
    for _ in range(min(params["resamples"], 500)):
        picks = {t: _stratified(rng, keys[t], item_sets[t]) for t in keys if keys[t]}
        resampled = []
        for r in rows:
            d = {}
            for t, m in r["models"].items():
                dist = m.dist[picks[t]]
                if m.samples:
                    dist = multinomial(rng, m.samples, dist) / m.samples
                d[t] = dist
            resampled.append(d)
        boot_rows = [
            {
                **r,
                "models": {
                    t: _restrict(m, [m.keys[i] for i in picks[t]]) for t, m in r["models"].items()
                },
            }
            for r in rows
        ]
        try:
            b = pinocchio(
                _scores(boot_rows, columns, item_sets, resampled), orient=index, orient_sign=sign
            )
        except ValueError:
            continue  # a resample where a scale does not vary across models
        if index is None and b.loadings @ result.loadings < 0:
            b = type(b)(scores=-b.scores, loadings=-b.loadings, explained=b.explained)
        boots.append(b.scores)
    boots = np.array(boots)
    tail = (1 - params["confidence"]) / 2 * 100
    lows, highs = np.percentile(boots, [tail, 100 - tail], axis=0)
    models = []
    for r, row in enumerate(rows):
        info = row["info"]
        models.append(
            {
                "model": info.label,
                "endpoint": info.endpoint,
                "prompt_variant": info.prompt_variant,
                "release_date": info.release_date,
                "post_trained": info.post_trained,
                "base_model": info.base_model,
                "pi": rounded(result.scores[r]),
                "low": rounded(lows[r]),
                "high": rounded(highs[r]),
                **{c: rounded(matrix[r, j]) for j, c in enumerate(columns)},
            }
        )
    outside = [m["model"] for m in models if not m["low"] <= m["pi"] <= m["high"]]
    if outside:
        # Standardised scores of few rows are bounded: a row at the edge of the selection
        # can only move inwards under resampling, so its interval may not contain it.
        section.notes.append(
            f"Π of {', '.join(outside)} lies outside its resampling interval: with "
            f"{len(rows)} rows, a row at the edge of the selection can only move inwards "
            "when items are resampled. Read that interval as the spread of Π under "
            "resampling, not as a confidence interval; more models narrow it."
        )
    section.summary = {
        "scales": columns,
        "orientation": rule,
        "outside_interval": outside,
        "explained_variance": rounded(result.explained),
        "loadings": {c: rounded(v) for c, v in zip(columns, result.loadings, strict=True)},
        "models": models,
        "bootstrap_resamples": len(boots),
    }
    section.tables["pinocchio_models"] = pd.DataFrame(models)
    section.tables["pinocchio_loadings"] = pd.DataFrame(
        {"scale": columns, "loading": [rounded(v) for v in result.loadings]}
    )
    _item_pi(section, entries, item_sets)
    _release_and_pairs(section, models)
    return section


def _stratified(rng, keys, items) -> np.ndarray:
    """Item indexes resampled with replacement within each scale (every scale stays)."""
    by_scale: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        by_scale.setdefault(items.scales[k], []).append(i)
    return np.concatenate(
        [np.asarray(ix)[rng.integers(0, len(ix), len(ix))] for _, ix in sorted(by_scale.items())]
    )


def _restrict(model, keys):
    idx = [model.keys.index(k) for k in keys]
    return type(model)(
        keys=list(keys),
        dist=model.dist[idx],
        samples=model.samples,
        unparsed=model.unparsed,
        path=model.path,
        per_item_n=model.per_item_n[idx],
    )


def _item_pi(section, entries, item_sets) -> None:
    """π_i per item from endpoints that ran both the neutral and the human prompt."""
    by = {}
    for info, model in entries:
        by.setdefault((info.task, info.endpoint), {})[info.prompt_variant] = model
    rows = []
    for task in sorted({t for t, _ in by}):
        pairs = {e: v for (t, e), v in by.items() if t == task and {"neutral", "human"} <= set(v)}
        if len(pairs) < 2:
            continue
        items = item_sets[task]
        keys = [
            k
            for k in items.keys
            if all(k in v["neutral"].keys and k in v["human"].keys for v in pairs.values())
        ]

        def means(variant, keys=keys, items=items, pairs=pairs):
            return np.array(
                [
                    [
                        float(
                            v[variant].dist[v[variant].keys.index(k)][: len(items.values[k])]
                            @ np.asarray(items.values[k])
                        )
                        for k in keys
                    ]
                    for _, v in sorted(pairs.items())
                ]
            )

        pi = item_pi(means("neutral"), means("human"))
        rows += [
            {"task": task, "item": k, "pi_i": rounded(p)} for k, p in zip(keys, pi, strict=True)
        ]
    if rows:
        section.tables["pinocchio_items"] = pd.DataFrame(rows)
        section.summary["item_pi"] = rows
    else:
        section.notes.append(
            "Item π_i needs two or more endpoints that ran both the neutral and the human prompt."
        )


def _release_and_pairs(section, models) -> None:
    dated = [m for m in models if m["release_date"]]
    if len(dated) >= 3:
        years = [date.fromisoformat(m["release_date"]).toordinal() / 365.25 for m in dated]
        section.summary["release_trend_per_year"] = interval(trend(years, [m["pi"] for m in dated]))
        section.plots["pi_release_date"] = plots.points(
            years,
            [m["pi"] for m in dated],
            [m["model"] for m in dated],
            "release date (years)",
            "Π",
            yerr=[[m["pi"] - m["low"] for m in dated], [m["high"] - m["pi"] for m in dated]],
        )
    else:
        section.notes.append("Π against release date needs three or more dated models.")
    by_name = {(m["endpoint"], m["prompt_variant"]): m for m in models}
    pairs = [
        (m, by_name[(m["base_model"], m["prompt_variant"])])
        for m in models
        if m["base_model"] and (m["base_model"], m["prompt_variant"]) in by_name
    ]
    section.summary["base_vs_post"] = [
        {"post": p["model"], "base": b["model"], "difference": rounded(p["pi"] - b["pi"])}
        for p, b in pairs
    ]
    if len(pairs) >= 2:
        section.summary["base_vs_post_mean"] = interval(
            paired_difference([p["pi"] for p, _ in pairs], [b["pi"] for _, b in pairs])
        )
    families = {}
    for m in models:
        families.setdefault(m["base_model"] or m["endpoint"], []).append(m["pi"])
    section.summary["family_spread"] = {
        f: rounded(np.std(v, ddof=1)) for f, v in sorted(families.items()) if len(v) >= 2
    }
