"""Likelihood of human transcripts (Binz et al., Psych-201).

Per ``likelihood`` run: negative log-likelihood per participant (minus the sum of the
log-probabilities of their ``<<…>>`` spans), its mean per experiment, and the pseudo-R²
1 − LL_model / LL_random against a chooser picking uniformly among the task's options
(summed over the experiment's participants), with a percentile interval over
participants resampled. Effect sizes (Cohen's d on per-participant log-likelihood, with
its large-sample interval): with vs without profile lines for the same endpoint and data,
and post-trained vs base for endpoints linked by ``base_model``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.reports.base import Section, interval, rounded
from scoring.stats.inference import cohens_d_interval
from scoring.stats.likelihood import pseudo_r2


def _pseudo_r2_interval(ll, random_ll, resamples, confidence, seed) -> dict:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(ll), size=(resamples, len(ll)))
    draws = 1 - ll[picks].sum(axis=1) / random_ll[picks].sum(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return {
        "value": rounded(pseudo_r2(ll.sum(), random_ll.sum())),
        "low": rounded(low),
        "high": rounded(high),
    }


def likelihood(runs, params) -> Section:
    """The likelihood section.

    Args:
        runs: ``[(RunInfo, frame, choices)]``: the run, its `likelihood_frame` and the
            options per response (None when they vary: no pseudo-R² then).
        params: report parameters.
    """
    section = Section("likelihood", "Likelihood of human behaviour")
    rows, participants = [], []
    by_run = {}
    for info, frame, choices in runs:
        by_run[info.id] = (info, frame)
        for experiment, group in frame.groupby("experiment", sort=True):
            ll = group["log_likelihood"].to_numpy(dtype=float)
            row = {
                "run": info.id,
                "model": info.label,
                "with_profile": info.with_profile,
                "dataset": info.dataset,
                "experiment": experiment,
                "participants": len(group),
                "responses": int(group["responses"].sum()),
                "mean_nll": rounded(-ll.mean()),
                "pseudo_r2": None,
            }
            if choices:
                random_ll = -group["responses"].to_numpy(dtype=float) * np.log(choices)
                row["pseudo_r2"] = _pseudo_r2_interval(
                    ll, random_ll, params["resamples"], params["confidence"], params["seed"]
                )
            rows.append(row)
        for r in frame.itertuples():
            participants.append(
                {
                    "run": info.id,
                    "model": info.label,
                    "participant": r.participant,
                    "experiment": r.experiment,
                    "nll": rounded(-r.log_likelihood),
                    "responses": r.responses,
                }
            )
        if not choices:
            section.notes.append(
                f"run {info.id}: the number of options varies in this task, so no pseudo-R²."
            )
    effects = []
    infos = [info for info, _ in by_run.values()]
    for a in infos:
        for b in infos:
            same_data = (a.endpoint, a.dataset, a.task) == (b.endpoint, b.dataset, b.task)
            if same_data and a.with_profile and not b.with_profile:
                effects.append(_effect("profile vs no profile", a, b, by_run))
            if a.base_model == b.endpoint and (a.dataset, a.with_profile, a.task) == (
                b.dataset,
                b.with_profile,
                b.task,
            ):
                effects.append(_effect("post-trained vs base", a, b, by_run))
    section.summary = {"runs": rows, "effects": effects}
    section.tables["likelihood_experiments"] = pd.DataFrame(
        [
            {
                **{k: v for k, v in r.items() if k != "pseudo_r2"},
                "pseudo_r2": (r["pseudo_r2"] or {}).get("value"),
                "pseudo_r2_low": (r["pseudo_r2"] or {}).get("low"),
                "pseudo_r2_high": (r["pseudo_r2"] or {}).get("high"),
            }
            for r in rows
        ]
    )
    section.tables["likelihood_participants"] = pd.DataFrame(participants)
    if effects:
        section.tables["likelihood_effects"] = pd.DataFrame(
            [
                {k: (v if not isinstance(v, dict) else v["value"]) for k, v in e.items()}
                for e in effects
            ]
        )
    return section


def _effect(kind, after, before, by_run) -> dict:
    post = by_run[after.id][1]["log_likelihood"].to_numpy(dtype=float)
    base = by_run[before.id][1]["log_likelihood"].to_numpy(dtype=float)
    return {
        "comparison": kind,
        "run": after.id,
        "against_run": before.id,
        "model": after.label,
        "against_model": before.label,
        "cohens_d": interval(cohens_d_interval(post, base)),
    }
