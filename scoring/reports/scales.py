"""Where models' scale scores fall among people: tables shared by the first-person sections.

Columns of the wide tables are labelled by what a scale measures: its ``construct`` when
the task spec sets one (so neuroticism is ``neuroticism`` in every instrument), else its
name. Against published norms (a human dataset of kind ``norms``) the rows come from
`scoring.norms.scale_positions`: z = (score − mean) / SD and the normal percentile
100 · Φ(z) for every group the norms give.
"""

from __future__ import annotations

import pandas as pd

from scoring.reports.base import Section, rounded


def scale_label(spec_scales: dict, scale: str) -> str:
    """The construct a scale measures when the spec names it, else the scale's name."""
    info = spec_scales.get(scale) or {}
    return info.get("construct") or info.get("name") or scale


def percentile_table(placement: list[dict], spec_scales: dict) -> pd.DataFrame:
    """One row per model (and group), one column of percentiles per scale, by construct."""
    rows: dict[tuple, dict] = {}
    for p in placement:
        key = (p["run"], p["model"], p.get("group", "all"))
        row = rows.setdefault(key, {"run": key[0], "model": key[1], "group": key[2]})
        row[scale_label(spec_scales, p["scale"])] = p["percentile"]
    return pd.DataFrame(list(rows.values()))


def norms_section(task: str, dataset: str, runs, spec_scales: dict) -> Section:
    """Scale placement of participant runs against a dataset of published norms.

    Args:
        task: the task's slug.
        dataset: the norms dataset's slug.
        runs: ``[(RunInfo, positions)]``, positions a list of dicts with ``scale``,
            ``statistic``, ``score``, ``group``, ``mean``, ``sd``, ``n``, ``z``,
            ``percentile`` and ``source``; or ``(RunInfo, str)`` for a run that could
            not be scored (the reason).
        spec_scales: the task spec's ``scales``.
    """
    section = Section("first_person", f"Scale placement: {task} against the norms {dataset}")
    placement = []
    for info, positions in runs:
        if isinstance(positions, str):
            section.notes.append(f"run {info.id} ({info.label}) left out: {positions}")
            continue
        for p in positions:
            scale = spec_scales.get(p["scale"]) or {}
            placement.append(
                {
                    "run": info.id,
                    "model": info.label,
                    "scale": p["scale"],
                    "scale_name": scale.get("name", p["scale"]),
                    "construct": scale.get("construct"),
                    "group": p["group"],
                    "statistic": p["statistic"],
                    "score": rounded(p["score"]),
                    "mean": rounded(p["mean"]),
                    "sd": rounded(p["sd"]),
                    "n": p["n"],
                    "z": rounded(p["z"]),
                    "percentile": rounded(p["percentile"]),
                    "source": p["source"],
                }
            )
    section.notes.append(
        "Percentiles against published norms assume normally distributed scale scores in "
        "each group: 100 · Φ((score − mean) / SD)."
    )
    section.summary = {
        "task": task,
        "dataset": dataset,
        "basis": "norms",
        "runs": [],
        "scale_placement": placement,
    }
    if placement:
        section.tables["scale_placement"] = pd.DataFrame(placement).fillna({"construct": ""})
        section.tables["scale_percentiles"] = percentile_table(placement, spec_scales)
    return section
