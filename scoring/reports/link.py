"""The link: across models, first-person alignment against third-person accuracy.

First-person alignment of a model is 1 − its mean JS distance to people (observed, on
the first task both sections share); third-person accuracy is its mean 1 − JS distance
of predicted to human distributions on the same task. Pearson correlation across models
with a Fisher-z interval (needs four models or more) and n.
"""

from __future__ import annotations

import pandas as pd

from scoring.reports import plots
from scoring.reports.base import Section, interval, rounded
from scoring.stats.inference import correlation


def link(first: Section, third: Section) -> Section:
    """The link section from a first-person and a third-person section of one task."""
    section = Section("link", "First-person alignment and third-person accuracy")
    fp = {
        r["model"].split(" [")[0]: 1 - r["js"]["observed"]["value"]
        for r in first.summary["runs"]
        if "[" not in r["model"]
    }
    tp = {r["model"].split(" [")[0]: r["js_similarity"]["value"] for r in third.summary["runs"]}
    unparsed = sorted(m for m, v in tp.items() if v is None)
    if unparsed:
        # A model none of whose predictions parsed has no third-person accuracy to link.
        section.notes.append(f"Left out, no population prediction parsed: {', '.join(unparsed)}.")
    models = sorted(set(fp) & {m for m, v in tp.items() if v is not None})
    rows = [
        {"model": m, "first_person": rounded(fp[m]), "third_person": rounded(tp[m])} for m in models
    ]
    section.tables["link_models"] = pd.DataFrame(rows)
    section.summary = {"task": first.summary["task"], "models": rows, "n": len(models)}
    if len(models) >= 4:
        section.summary["correlation"] = interval(
            correlation([fp[m] for m in models], [tp[m] for m in models])
        )
    else:
        section.summary["correlation"] = None
        section.notes.append(
            f"A correlation across models needs four models or more; this report has {len(models)}."
        )
    if models:
        section.plots["link_scatter"] = plots.points(
            [fp[m] for m in models],
            [tp[m] for m in models],
            models,
            "first-person alignment (1 − JS distance)",
            "third-person accuracy (1 − JS distance)",
        )
    return section
