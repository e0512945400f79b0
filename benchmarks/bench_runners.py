"""Runner and queue overhead, each against its peer measured in the same run.

1. Raw transformers loop vs the `hf` runner through the full queue (queue_run →
   execute_unit → upserted responses), same items, same model. Target: overhead ≤ 15 %.
2. `openai` runner against a loopback server that answers after 50 ms: throughput vs the
   ideal concurrency / latency. Target: ≥ 0.8 × ideal.

3. (--vllm) raw `vllm.LLM` prompt_logprobs vs the `vllm` runner on the same texts.
   Target: overhead ≤ 10 %.

Run: .venv/bin/python benchmarks/bench_runners.py [--layers 4 --hidden 256] [--vllm]
Prints a table; asserts nothing.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("GEPPETTO_VAR_DIR", tempfile.mkdtemp(prefix="geppetto-bench-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import django  # noqa: E402

django.setup()

from django.test.utils import setup_databases, teardown_databases  # noqa: E402

IPIP = ROOT / "benchmark" / "tasks" / "personality" / "ipip-big5-50.yaml"


def raw_loop(model_dir: Path, prompts: list[str], options: list[str]) -> tuple[float, list]:
    """The obvious transformers code: per item, one padded batch of its option sequences.

    Options are closed with ``>>`` only when one is a prefix of another (the exact
    definition; IPIP's ``1``…``5`` are scored bare).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).eval()
    close = ">>" if any(a != b and b.startswith(a) for a in options for b in options) else ""
    started = time.perf_counter()
    out = []
    with torch.inference_mode():
        for prompt in prompts:
            ctx = tok(prompt)["input_ids"]
            seqs = [tok(prompt + o + close)["input_ids"] for o in options]
            width = max(map(len, seqs))
            ids = torch.full((len(seqs), width), tok.pad_token_id)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for i, s in enumerate(seqs):
                ids[i, : len(s)] = torch.tensor(s)
                mask[i, : len(s)] = 1
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits, -1)
            out.append(
                [
                    float(sum(logp[i, j - 1, s[j]] for j in range(len(ctx), len(s))))
                    for i, s in enumerate(seqs)
                ]
            )
    return time.perf_counter() - started, out


def queued(model_dir: Path) -> tuple[float, list, list[str], list[str]]:
    """The same items through queue_run and execute_unit (the worker's code path)."""
    from benchmark.models import ModelEndpoint
    from benchmark.rendering import render_prompt, spec_items
    from benchmark.runners.hf import HFRunner
    from benchmark.services import execution
    from benchmark.services.execution import runner_for
    from benchmark.services.runs import queue_run
    from benchmark.services.tasks import load_tasks
    from benchmark.specs import spec_from_json

    version = load_tasks([IPIP])[0].version
    endpoint = ModelEndpoint.objects.create(name="bench", provider="hf", model=str(model_dir))
    runner_for(endpoint)  # load the model before timing, as a worker does once per process
    spec = spec_from_json(version.spec)
    items = spec_items(spec)
    prompts = [render_prompt(spec, [], i.key, items=items).text for i in items]
    options = [o.key for o in items[0].options]
    assert isinstance(runner_for(endpoint), HFRunner)
    started = time.perf_counter()
    run = queue_run(endpoint=endpoint, task_version=version, batch_size=10)
    for unit_id in run.units.values_list("pk", flat=True):
        assert execution.execute_unit(unit_id) == "done"
    seconds = time.perf_counter() - started
    by_key = {r.item_key: r.details["logprobs"] for r in run.responses.all()}
    ours = [[by_key[i.key][o] for o in options] for i in items]
    return seconds, ours, prompts, options


class SlowHandler(BaseHTTPRequestHandler):
    """Answers every completion after a fixed latency."""

    latency = 0.05

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(self.latency)
        body = json.dumps(
            {
                "choices": [{"index": 0, "text": "B", "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 1},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def http_throughput(concurrency: int, requests: int) -> float:
    from benchmark.runners import get_runner
    from benchmark.runners.base import SampleRequest

    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with get_runner("openai", base_url=url, model="m", max_concurrency=concurrency) as runner:
            runner.sample([SampleRequest("warm up", max_tokens=1)], 1)
            started = time.perf_counter()
            runner.sample([SampleRequest(f"p{i}", max_tokens=1) for i in range(requests)], 1)
            return requests / (time.perf_counter() - started)
    finally:
        server.shutdown()


def vllm_pair(model_dir: Path, prompts: list[str], options: list[str]) -> tuple[float, float]:
    """Raw `vllm.LLM` prompt_logprobs vs our vllm runner on the same (item, option) texts."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import SamplingParams

    from benchmark.runners import get_runner
    from benchmark.runners.base import ScoreRequest

    runner = get_runner(
        "vllm",
        model_path=str(model_dir),
        dtype="float32",
        max_model_len=2048,
        enforce_eager=True,
        compilation_config={"mode": 0},
    )
    requests = [ScoreRequest(p, o + ">>") for p in prompts for o in options]
    texts = [r.context + r.continuation for r in requests]
    params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0)
    runner.llm.generate(texts[:5], params, use_tqdm=False)  # warm up
    raw_times, our_times = [], []
    for _ in range(2):
        started = time.perf_counter()
        runner.llm.generate(texts, params, use_tqdm=False)
        raw_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        runner.score(requests)
        our_times.append(time.perf_counter() - started)
    return min(our_times), min(raw_times)


def main():
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", help="a transformers folder instead of the random Llama")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--vllm", action="store_true", help="also compare with raw vllm.LLM")
    args = parser.parse_args()
    from tests.tiny_model import build_tiny_llama

    if args.model_dir:
        model_dir = Path(args.model_dir)
    else:
        model_dir = build_tiny_llama(
            Path(tempfile.mkdtemp()), layers=args.layers, hidden=args.hidden
        )
    # Alternate the two, twice, and keep each one's best time: other load on the machine
    # then hits both alike.
    ours_times, raw_times = [], []
    for _ in range(2):
        old = setup_databases(verbosity=0, interactive=False)
        try:
            seconds, ours, prompts, options = queued(model_dir)
            ours_times.append(seconds)
        finally:
            teardown_databases(old, verbosity=0)
        seconds, raw = raw_loop(model_dir, prompts, options)
        raw_times.append(seconds)
    ours_s, raw_s = min(ours_times), min(raw_times)
    diff = max(
        abs(a - b) for x, y in zip(ours, raw, strict=True) for a, b in zip(x, y, strict=True)
    )
    model = model_dir.name if args.model_dir else f"random Llama, {args.layers} × {args.hidden}"
    print(f"model: {model}; 50 IPIP items × 5 options")
    print(f"{'measure':52} {'ours':>10} {'peer':>10} {'ratio':>8}")
    print(
        f"{'(1) hf through the queue vs raw transformers (s)':52} {ours_s:10.2f} {raw_s:10.2f} "
        f"{ours_s / raw_s:7.2f}x   overhead {100 * (ours_s / raw_s - 1):+.0f}%, "
        f"max |Δ logprob| {diff:.1e}"
    )
    if args.vllm:
        ours_v, raw_v = vllm_pair(model_dir, prompts, options)
        print(
            f"{'(3) vllm runner vs raw vllm.LLM prompt_logprobs (s)':52} {ours_v:10.2f} "
            f"{raw_v:10.2f} {ours_v / raw_v:7.2f}x   overhead {100 * (ours_v / raw_v - 1):+.0f}%"
        )
    ideal = args.concurrency / SlowHandler.latency
    got = http_throughput(args.concurrency, args.requests)
    print(
        f"{'(2) openai runner, 50 ms server, requests/s':52} {got:10.1f} {ideal:10.1f} "
        f"{got / ideal:7.2f}x   (peer = concurrency / latency)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"peak RSS of this process (every measure above): {peak:.2f} GB")


if __name__ == "__main__":
    main()
