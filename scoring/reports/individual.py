"""Third-person accuracy for individuals: ``predict_individual`` runs against what people said.

Per run: the log-likelihood gain, in bits per response, of the model's prediction of each
person's answer (given that person's profile) over the population prediction, the human
answer distribution of the same item without that person (one added to every option's
count). Above 0: the profile-based prediction gives people's actual answers more
probability than knowing the population does. Interval: percentile bootstrap over
people (a person's answers are resampled together).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.reports.base import Section, rounded
from scoring.stats.prediction import cluster_mean_interval, gain_bits, leave_one_out

BASELINE = "human population without the person, one added to every option's count"


def individual_section(runs, human, items, params) -> Section:
    """The section for the ``predict_individual`` runs of one task on one human dataset.

    Args:
        runs: (`RunInfo`, `IndividualPredictions`) per run.
        human: the dataset's answer counts (`HumanItems`), everyone included.
        items: the task's items (`ItemSet`).
        params: the report's ``resamples``, ``confidence`` and ``seed``.
    """
    section = Section(
        "individual",
        f"Third-person accuracy, individuals: {runs[0][0].task} against {human.dataset}",
    )
    widths = [len(items.options[k]) for k in human.keys]
    rows, people_rows = [], []
    for info, pred in runs:
        row = {
            "run": info.id,
            "model": info.label,
            "path": pred.path,
            "unparsed_share": rounded(pred.unparsed),
            "responses": len(pred.answer),
            "people": len(set(pred.person.tolist())),
            "baseline": BASELINE,
        }
        if not len(pred.answer):
            row["gain_bits"] = {"value": None, "low": None, "high": None}
            rows.append(row)
            section.notes.append(f"run {info.id}: no prediction of an answer people gave.")
            continue
        population = leave_one_out(human.counts, pred.item, pred.answer, widths=widths)
        gains = gain_bits(pred.predicted, population, pred.answer)
        value, low, high = cluster_mean_interval(
            gains, pred.person, params["resamples"], params["confidence"], params["seed"]
        )
        row["gain_bits"] = {"value": rounded(value), "low": rounded(low), "high": rounded(high)}
        rows.append(row)
        for pid in sorted(set(pred.person.tolist())):
            mine = gains[pred.person == pid]
            people_rows.append(
                {
                    "run": info.id,
                    "model": info.label,
                    "participant": pred.names.get(pid, str(pid)),
                    "responses": len(mine),
                    "gain_bits": rounded(np.mean(mine)),
                }
            )
    section.summary = {
        "task": runs[0][0].task,
        "dataset": human.dataset,
        "unit": "bits per response",
        "baseline": BASELINE,
        "runs": rows,
    }
    section.tables["individual_models"] = pd.DataFrame(
        [
            {
                **{k: r[k] for k in ("run", "model", "path", "unparsed_share", "responses")},
                "people": r["people"],
                "gain_bits": r["gain_bits"]["value"],
                "gain_bits_low": r["gain_bits"]["low"],
                "gain_bits_high": r["gain_bits"]["high"],
            }
            for r in rows
        ]
    )
    section.tables["individual_participants"] = pd.DataFrame(
        people_rows, columns=["run", "model", "participant", "responses", "gain_bits"]
    )
    return section
