"""Likelihood of human transcripts: one pass per text (rolling windows) vs one pass per span.

The peer is the obvious way, and what a `ScoreRequest` per span does: each response
span scored as a continuation of all the text before it (batched, padded). Ours reads
every span of a transcript from one forward pass per window of ``max_length`` tokens.
Both run the `hf` runner on the same random Llama and the same bundled Psych-201
transcript (Dezfouli et al. 2019, two-armed bandit: ~1,300 responses per participant).

Run: .venv/bin/python benchmarks/bench_likelihood.py [--spans 150] [--max-length 1024]
Prints a table; asserts nothing.
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("GEPPETTO_VAR_DIR", tempfile.mkdtemp(prefix="geppetto-bench-"))

import django  # noqa: E402

django.setup()

DEZFOULI = ROOT / "benchmark" / "data" / "psych201" / "dezfouli2019.jsonl.zip"


def first_transcript():
    from benchmark import psych201

    record = next(iter(psych201.iter_records(DEZFOULI, DEZFOULI.name)))
    return record.text, [tuple(s) for s in record.spans]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", help="a transformers folder instead of the random Llama")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--spans", type=int, default=150, help="spans the peer scores")
    parser.add_argument("--max-length", type=int, default=1024)
    args = parser.parse_args()

    from benchmark.runners import get_runner
    from benchmark.runners.base import Runner, SpansRequest
    from benchmark.runners.tokens import windows
    from tests.tiny_model import build_tiny_llama

    if args.model_dir:
        model_dir = Path(args.model_dir)
    else:
        model_dir = build_tiny_llama(
            Path(tempfile.mkdtemp()), layers=args.layers, hidden=args.hidden
        )
    text, spans = first_transcript()
    cut = spans[args.spans - 1][1]
    part = SpansRequest(text[:cut], tuple(spans[: args.spans]))
    whole = SpansRequest(text, tuple(spans))
    with get_runner("hf", model_path=str(model_dir), max_length=args.max_length) as runner:
        n_part = len(runner.tokenizer(part.text)["input_ids"])
        n_whole = len(runner.tokenizer(whole.text)["input_ids"])
        started = time.perf_counter()
        [ours] = runner.score_spans([part])
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        [peer] = Runner._score_spans(runner, [part])  # one ScoreRequest per span
        peer_s = time.perf_counter() - started
        started = time.perf_counter()
        runner.score_spans([whole])
        whole_s = time.perf_counter() - started
    first_window = [
        i
        for i, (_, end) in enumerate(part.spans)
        if len(runner.tokenizer(part.text[:end])["input_ids"]) < args.max_length
    ]
    deltas = [abs(a.logprob - b.logprob) for a, b in zip(ours, peer, strict=True)]
    print(
        f"model: {model_dir.name if args.model_dir else f'random Llama, {args.layers} layers'}; "
        f"max_length {args.max_length}; {os.cpu_count()} cores"
    )
    print(f"{'measure':62} {'one pass':>10} {'per span':>10} {'ratio':>8}")
    label = f"{args.spans} spans, {n_part} tokens: seconds"
    print(f"{label:62} {ours_s:10.2f} {peer_s:10.2f} {peer_s / ours_s:7.1f}x")
    passes = len(windows(n_part, args.max_length))
    print(f"{'forward passes (windows / spans)':62} {passes:10d} {len(part.spans):10d}")
    inside = max((deltas[i] for i in first_window), default=0.0)
    print(f"{'max |Δ log-prob|, spans inside the first window':62} {inside:10.2e}")
    print(
        f"{'mean |Δ log-prob|, all spans (less context past the window)':62} "
        f"{sum(deltas) / len(deltas):10.2e}"
    )
    label = f"whole transcript: {len(spans)} spans, {n_whole} tokens: seconds"
    print(f"{label:62} {whole_s:10.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"{'peak RSS of this process, GB':62} {peak:10.2f}")


if __name__ == "__main__":
    main()
