"""Alignment statistics at scale: scoring.stats vs the obvious pandas/scipy loop.

1,000,000 responses (10,000 participants × 100 five-option items) against a model's
distributions, Jensen–Shannon distance, 1,000 bootstrap resamples of participants and
items (percentile interval). Ours resamples with matrix products a chunk at a time; the
peer loops over resamples, recounting each item with pandas and measuring each with
scipy. Peak memory is Python's traced allocations (numpy's included), per side.
Target: ours under 10 s and 2 GB.

Run: .venv/bin/python benchmarks/bench_scoring.py [--participants 10000 --items 100
     --resamples 1000]
Prints a table; asserts nothing.
"""

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scoring.stats.alignment import alignment


def obvious_loop(answers: np.ndarray, model: np.ndarray, resamples: int, seed: int):
    """Resample rows and items, count each item with pandas, measure with scipy."""
    rng = np.random.default_rng(seed)
    n, items = answers.shape
    frame = pd.DataFrame(answers)
    draws = []
    for _ in range(resamples):
        sample = frame.iloc[rng.integers(0, n, n)]
        picked = rng.integers(0, items, items)
        distances = []
        for item in picked:
            counts = sample[item].value_counts().reindex(range(5), fill_value=0).to_numpy()
            distances.append(jensenshannon(counts, model[item], base=2))
        draws.append(np.mean(distances))
    value = np.mean(
        [
            jensenshannon(np.bincount(answers[:, i], minlength=5), model[i], base=2)
            for i in range(items)
        ]
    )
    low, high = np.percentile(draws, [2.5, 97.5])
    return value, low, high


def measure(fn):
    tracemalloc.start()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak / 2**20


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    truth = rng.dirichlet(np.ones(5) * 2, size=args.items)
    answers = np.stack(
        [rng.choice(5, size=args.participants, p=row) for row in truth], axis=1
    ).astype(np.int64)
    model = rng.dirichlet(np.ones(5) * 2, size=args.items)

    ours, ours_s, ours_mb = measure(
        lambda: alignment(answers, model, n_options=5, resamples=args.resamples, seed=1)
    )
    (value, low, high), peer_s, peer_mb = measure(
        lambda: obvious_loop(answers, model, args.resamples, seed=2)
    )
    responses = args.participants * args.items
    print(
        f"{responses:,} responses ({args.participants:,} participants × {args.items} items), "
        f"{args.resamples:,} resamples of participants and items"
    )
    print(f"{'':34} {'scoring.stats':>14} {'pandas/scipy loop':>18} {'ratio':>8}")
    print(f"{'seconds':34} {ours_s:14.2f} {peer_s:18.2f} {peer_s / ours_s:7.1f}x")
    print(f"{'peak traced memory (MB)':34} {ours_mb:14.0f} {peer_mb:18.0f}")
    print(f"{'mean JS distance':34} {ours.value:14.5f} {value:18.5f}")
    print(f"{'95% interval':34} {ours.low:6.4f}–{ours.high:6.4f} {low:10.4f}–{high:6.4f}")


if __name__ == "__main__":
    main()
