"""Our `hf` runner vs lm-evaluation-harness `loglikelihood` on the same requests and model.

Target: ours ≥ 1.0× lm-eval's throughput, identical log-probabilities.

lm-eval has its own dependencies, so it runs in its own environment:

    python3.11 -m venv /tmp/lmeval
    /tmp/lmeval/bin/pip install torch==2.13.0
    /tmp/lmeval/bin/pip install lm-eval==0.4.13 transformers==5.19.0
    .venv/bin/python benchmarks/bench_lmeval.py --lmeval-python /tmp/lmeval/bin/python

Prints a table; asserts nothing.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEER = r"""
import json, sys, time
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
model_dir, batch, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pairs = json.load(open(path))
lm = HFLM(pretrained=model_dir, batch_size=batch, device="cpu", dtype="float32")
make = lambda ps: [Instance("loglikelihood", {}, tuple(p), i) for i, p in enumerate(ps)]
lm.loglikelihood(make(pairs[:5]), disable_tqdm=True)
times = []
for _ in range(2):
    started = time.perf_counter()
    out = lm.loglikelihood(make(pairs), disable_tqdm=True)
    times.append(time.perf_counter() - started)
print(json.dumps({"seconds": min(times), "logprobs": [lp for lp, _ in out]}))
"""


def requests_for_ipip() -> list[tuple[str, str]]:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from benchmark.rendering import render_prompt, spec_items
    from benchmark.specs import load_spec_file

    spec = load_spec_file(ROOT / "benchmark" / "tasks" / "personality" / "ipip-big5-50.yaml")
    items = spec_items(spec)
    return [
        (render_prompt(spec, [], i.key, items=items).text, o.key + ">>")
        for i in items
        for o in i.options
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lmeval-python", default=sys.executable)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    from benchmark.runners.base import ScoreRequest
    from benchmark.runners.hf import HFRunner
    from tests.tiny_model import build_tiny_llama

    model_dir = build_tiny_llama(Path(tempfile.mkdtemp()), layers=args.layers, hidden=args.hidden)
    pairs = requests_for_ipip()
    runner = HFRunner(str(model_dir), batch_size=args.batch_size)
    requests = [ScoreRequest(c, x) for c, x in pairs]
    runner.score(requests[:5])
    ours_times = []
    for _ in range(2):
        started = time.perf_counter()
        ours = runner.score(requests)
        ours_times.append(time.perf_counter() - started)

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(pairs, handle)
    peer = subprocess.run(
        [args.lmeval_python, "-c", PEER, str(model_dir), str(args.batch_size), handle.name],
        capture_output=True,
        text=True,
    )
    if peer.returncode:
        sys.exit(f"lm-eval failed:\n{peer.stderr[-3000:]}")
    theirs = json.loads(peer.stdout.strip().splitlines()[-1])
    diff = max(abs(a.logprob - b) for a, b in zip(ours, theirs["logprobs"], strict=True))
    n = len(requests)
    ours_rate, their_rate = n / min(ours_times), n / theirs["seconds"]
    print(
        f"model: random Llama {args.layers} layers × {args.hidden}; {n} requests "
        f"(50 IPIP items × 5 options), batch size {args.batch_size}"
    )
    print(f"{'requests/s':40} {'ours':>10} {'lm-eval':>10} {'ratio':>8}")
    print(
        f"{'loglikelihood throughput':40} {ours_rate:10.1f} {their_rate:10.1f} "
        f"{ours_rate / their_rate:7.2f}x   max |Δ logprob| {diff:.1e}"
    )


if __name__ == "__main__":
    main()
