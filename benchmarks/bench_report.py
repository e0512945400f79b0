"""Report sections at the size of the IPIP demo: wall time and peak memory per section.

Synthetic data of the bundled IPIP-50's shape (19,719 respondents × 50 five-point items, 5
scales), four participant runs (two endpoints × neutral/human prompt), four population
predictions, two likelihood runs over 300 participants; 1,000 resamples. Each section is
timed on its own (Python's traced allocations give the peak), then the ZIP bundle.

Peer, in the same run: the calibrated interval (`corrected_alignment`, the costliest
statistic of a report) against the straightforward loop that draws every λ and resample
with `Generator.multinomial` row by row.

Run: .venv/bin/python benchmarks/bench_report.py [--people 19719 --resamples 1000]
Prints a table; asserts nothing.
"""

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scoring.reports.bundle import bundle
from scoring.reports.data import HumanItems, ItemSet, ModelItems, RunInfo
from scoring.reports.first_person import first_person
from scoring.reports.likelihood import likelihood
from scoring.reports.pinocchio import pinocchio_section
from scoring.reports.third_person import third_person
from scoring.stats.distances import DISTANCES
from scoring.stats.reference import corrected_alignment


def measure(fn):
    tracemalloc.start()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak / 2**20


def info(n, endpoint, variant, mode, release):
    return RunInfo(
        id=n,
        label=endpoint if variant == "neutral" else f"{endpoint} [{variant}]",
        endpoint=endpoint,
        provider="hf",
        model=endpoint,
        revision="",
        base_model=None,
        post_trained=False,
        release_date=release,
        task="ipip",
        task_version=1,
        mode=mode,
        scoring_mode="exact",
        prompt_variant=variant,
        prompt_hash="",
        with_profile=False,
        seed=0,
        samples_per_item=1,
        dataset="people",
    )


def loop_corrected(counts, q, resamples, grid, seed):
    """The straightforward calibration: every λ and resample drawn row by row."""
    rng = np.random.default_rng(seed)
    p_hat = counts / counts.sum(axis=1, keepdims=True)
    sizes = counts.sum(axis=1).astype(int)
    observed = DISTANCES["js"](p_hat, q).mean()
    truths, medians = [], []
    for lam in np.linspace(0, 1.5, grid):
        p = np.clip((1 - lam) * q + lam * p_hat, 0, None)
        p /= p.sum(axis=1, keepdims=True)
        truths.append(DISTANCES["js"](p, q).mean())
        sims = []
        for _ in range(resamples):
            draw = np.stack([rng.multinomial(n, row) for n, row in zip(sizes, p, strict=True)])
            sims.append(DISTANCES["js"](draw, q).mean())
        medians.append(np.median(sims))
    return float(np.interp(observed, np.maximum.accumulate(medians), truths))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=19_719)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    keys = [f"{s}{n}" for n in range(1, 11) for s in "ENACO"]
    items = ItemSet(
        keys=keys,
        options={k: ["1", "2", "3", "4", "5"] for k in keys},
        values={k: [1.0, 2.0, 3.0, 4.0, 5.0] for k in keys},
        scales={k: k[0] for k in keys},
        reverse={k: int(k[1:]) % 2 == 0 for k in keys},
        kind="questionnaire",
        low=1,
        high=5,
    )
    truth = rng.dirichlet(np.ones(5) * 2, size=len(keys))
    answers = np.stack([rng.choice(5, size=args.people, p=row) for row in truth], axis=1)
    counts = np.stack([np.bincount(answers[:, i], minlength=5) for i in range(len(keys))])
    human = HumanItems("people", "x", keys, answers, counts.astype(float), None, args.people)

    def model(seed):
        dist = rng.dirichlet(np.ones(5), size=len(keys))
        return ModelItems(keys, dist, None, 0.0, "exact", np.ones(len(keys)))

    participant = [
        (info(n, e, v, "participant", d), model(n))
        for n, (e, v, d) in enumerate(
            [
                ("a", "neutral", "2024-01-01"),
                ("a", "human", "2024-01-01"),
                ("b", "neutral", "2024-09-01"),
                ("b", "human", "2024-09-01"),
            ]
        )
    ]
    population = [
        (info(10 + n, e, "neutral", "predict_population", None), model(10 + n))
        for n, e in enumerate("abcd")
    ]
    frames = []
    for n, e in enumerate("ab"):
        frames.append(
            (
                info(20 + n, e, "neutral", "likelihood", None),
                pd.DataFrame(
                    {
                        "participant": [str(i) for i in range(300)],
                        "experiment": "exp",
                        "log_likelihood": -rng.gamma(20, 1, size=300),
                        "responses": 50,
                    }
                ),
                5,
            )
        )
    params = {"resamples": args.resamples, "seed": 0, "confidence": 0.95, "pi_orient": ""}
    sections, rows = [], []
    for name, fn in [
        (
            "first_person (4 runs × 3 metrics)",
            lambda: first_person(participant, human, items, params),
        ),
        ("third_person (4 runs)", lambda: third_person(population, human, items, params)),
        ("likelihood (2 runs × 300 people)", lambda: likelihood(frames, params)),
        (
            "pinocchio (4 rows × 5 scales)",
            lambda: pinocchio_section(participant, {"ipip": items}, params),
        ),
    ]:
        section, seconds, mb = measure(fn)
        section.name = name.split(" ")[0]
        sections.append(section)
        rows.append((name, seconds, mb))
    summary = {
        "title": "bench",
        "report": 0,
        "built_at": "",
        "code_version": "",
        "params": params,
        "inputs": {},
        "software": {},
    }
    _, seconds, mb = measure(lambda: bundle(summary, sections))
    rows.append(("bundle (HTML, CSV, JSON, PNG, ZIP)", seconds, mb))
    print(
        f"IPIP-shaped data: {args.people:,} people × {len(keys)} items; "
        f"{args.resamples:,} resamples"
    )
    print(f"{'section':40} {'seconds':>8} {'peak MB':>8}")
    for name, seconds, mb in rows:
        print(f"{name:40} {seconds:8.2f} {mb:8.0f}")
    print(f"{'total':40} {sum(r[1] for r in rows):8.2f}")
    q = participant[0][1].dist
    few = 50  # the loop is slow: both sides at 50 resamples × 41 points
    ours, ours_s, ours_mb = measure(
        lambda: corrected_alignment(counts, q, resamples=few, grid=41, seed=0).corrected
    )
    peer, peer_s, peer_mb = measure(lambda: loop_corrected(counts, q, few, 41, 0))
    print()
    print(f"calibrated interval, JS, {few} resamples × 41 points of the path")
    print(f"{'':34} {'ours':>10} {'row loop':>10} {'ratio':>8}")
    print(f"{'seconds':34} {ours_s:10.2f} {peer_s:10.2f} {peer_s / ours_s:7.1f}x")
    print(f"{'peak traced memory (MB)':34} {ours_mb:10.0f} {peer_mb:10.0f}")
    print(f"{'corrected estimate':34} {ours:10.5f} {peer:10.5f}")


if __name__ == "__main__":
    main()
