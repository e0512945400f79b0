"""Hugging Face transformers on CPU or GPU: exact scoring and sampling, batched.

Scoring tokenises ``context + continuation`` once and reads the log-probabilities of
the continuation's tokens (split by character offsets, see `benchmark.runners.tokens`)
from one right-padded forward pass per batch: with right padding every real token
keeps its position, and causal attention never lets it see the padding after it.

Sampling runs one ``generate`` call per request (``n`` sequences at once), each seeded
on its own, so a request's samples do not depend on which other requests share the call.
"""

from __future__ import annotations

import copy
import inspect
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


class HFRunner(Runner):
    """A causal language model loaded with ``from_pretrained`` from a local folder.

    Args:
        model_path: the model folder (nothing is downloaded: ``local_files_only``).
        device: ``cpu``, ``cuda``, ``cuda:1`` …
        dtype: ``float32``, ``bfloat16`` or ``float16``.
        batch_size: sequences per forward pass when scoring.
        revision: recorded only (the folder is the revision).
        gguf_file: load a GGUF file of the folder instead of safetensors.
        max_length: longest sequence; longer contexts are cut from the left.
    """

    name = "hf"
    capabilities = frozenset({SCORE, SAMPLE, CHAT, TOKEN_LOGPROBS})

    def __init__(
        self,
        model_path: str,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 8,
        revision: str | None = None,
        gguf_file: str | None = None,
        max_length: int | None = None,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device
        self.batch_size = batch_size
        self.revision = revision
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True, **extra)
        self.model = AutoModelForCausalLM.from_pretrained(
            model_path, local_files_only=True, dtype=getattr(torch, dtype), **extra
        ).to(device)
        self.model.eval()
        self.max_length = max_length or getattr(self.model.config, "max_position_embeddings", 2048)
        self.pad_id = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id
        )
        self._lock = threading.Lock()  # one forward pass at a time per loaded model
        # Whether the model can compute logits for chosen positions only.
        self._keeps_rows = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        if not self.tokenizer.chat_template:  # a base model without a template cannot chat
            self.capabilities = type(self).capabilities - {CHAT}
        self.check_model()

    def __repr__(self):
        return f"HFRunner({self.model.name_or_path!r}, device={self.device!r})"

    # --- scoring ---------------------------------------------------------------------

    def _score(self, requests: list[ScoreRequest]) -> list[ScoreResult]:
        encoded = []
        for r in requests:
            ids, n_cont = continuation_split(self.tokenizer, r.context, r.continuation)
            if n_cont >= self.max_length:
                raise ValueError(
                    f"the continuation {r.continuation[:40]!r} has {n_cont} tokens; "
                    f"the model reads at most {self.max_length}"
                )
            encoded.append((ids[-self.max_length :], n_cont))  # cut long contexts from the left
        results: list[ScoreResult | None] = [None] * len(requests)
        # Requests that share a context (the options of one item) share one forward pass
        # over it: its key/value cache is reused for every continuation.
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.context, []).append(i)
        singles = []
        with self._lock, self.torch.inference_mode():
            for members in groups.values():
                if len(members) > 1 and self._score_shared(encoded, members, results):
                    continue
                singles += members
            self._score_batches(encoded, singles, results)
        return results

    def _result(self, seq: list[int], n_cont: int, picked) -> ScoreResult:
        """A score from the log-probability rows that predict the continuation's tokens."""
        torch = self.torch
        targets = torch.tensor(seq[-n_cont:], device=picked.device)
        token_lp = picked.gather(1, targets[:, None])[:, 0]
        return ScoreResult(
            logprob=float(token_lp.sum()),
            token_logprobs=[float(x) for x in token_lp],
            tokens=[self.tokenizer.decode([t]) for t in seq[-n_cont:]],
            greedy=bool((picked.argmax(dim=-1) == targets).all()),
        )

    def _score_batches(self, encoded, indexes: list[int], results: list) -> None:
        """Score whole sequences in padded batches, longest first (little padding)."""
        torch = self.torch
        order = sorted(indexes, key=lambda i: -len(encoded[i][0]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(encoded[i][0]) for i in batch)
            ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                seq = encoded[i][0]
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
            logits = self.model(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
            ).logits.float()
            logprobs = torch.log_softmax(logits, dim=-1)
            for row, i in enumerate(batch):
                seq, n_cont = encoded[i]
                positions = torch.arange(len(seq) - n_cont - 1, len(seq) - 1)
                results[i] = self._result(seq, n_cont, logprobs[row, positions, :])

    def _score_shared(self, encoded, members: list[int], results: list) -> bool:
        """Score requests with one context: the prefix once, then the suffixes as a batch.

        Returns False (nothing done) when the sequences share too little to gain.
        """
        torch = self.torch
        seqs = [encoded[i][0] for i in members]
        prefix = min(len(s) - n for s, n in (encoded[i] for i in members))
        while prefix > 0 and any(s[:prefix] != seqs[0][:prefix] for s in seqs[1:]):
            prefix -= 1
        if prefix < 2:
            return False
        head = torch.tensor([seqs[0][:prefix]], device=self.device)
        out = self.model(input_ids=head, use_cache=True)
        last = torch.log_softmax(out.logits[0, -1].float(), dim=-1)  # predicts token `prefix`
        cache = out.past_key_values
        for start in range(0, len(members), self.batch_size):
            batch = members[start : start + self.batch_size]
            tails = [encoded[i][0][prefix:] for i in batch]
            width = max(map(len, tails))
            ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), prefix + width), dtype=torch.long)
            mask[:, :prefix] = 1
            for row, tail in enumerate(tails):
                ids[row, : len(tail)] = torch.tensor(tail)
                mask[row, prefix : prefix + len(tail)] = 1
            batch_cache = copy.deepcopy(cache)
            batch_cache.batch_repeat_interleave(len(batch))
            logits = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                past_key_values=batch_cache,
                use_cache=True,
            ).logits.float()
            logprobs = torch.log_softmax(logits, dim=-1)
            for row, i in enumerate(batch):
                seq, n_cont = encoded[i]
                # Row k of `rows` predicts token prefix + k: the prefix's last position,
                # then each tail position but the last.
                rows = torch.cat([last[None, :], logprobs[row, : len(seq) - prefix - 1, :]])
                results[i] = self._result(seq, n_cont, rows[len(seq) - n_cont - prefix :])
        return True

    def _score_spans(self, requests: list[SpansRequest]) -> list[list[ScoreResult]]:
        """Every span of a text from one pass over it (rolling windows past ``max_length``)."""
        if not getattr(self.tokenizer, "is_fast", False):
            return super()._score_spans(requests)
        out = []
        with self._lock, self.torch.inference_mode():
            for r in requests:
                ids, offsets, special = text_encoding(self.tokenizer, r.text)
                picks = span_tokens(offsets, special, r.spans, r.text)
                scored = self._token_logprobs(ids, sorted({i for p in picks for i in p}))
                out.append(span_results(picks, scored))
        return out

    def _token_logprobs(self, ids: list[int], targets: list[int]) -> dict[int, tuple]:
        """Log-probability, top-choice flag and text of each target token, given those before.

        Only the rows that predict targets are turned into logits.
        """
        torch = self.torch
        found = {}
        wanted = set(targets)
        for start, end, first in windows(len(ids), self.max_length):
            here = [t for t in range(first, end) if t in wanted]
            if not here:
                continue
            window = torch.tensor([ids[start:end]], device=self.device)
            rows = torch.tensor([t - start - 1 for t in here], device=self.device)
            if self._keeps_rows:  # the vocabulary-wide logits of a long window would not fit
                logits = self.model(input_ids=window, logits_to_keep=rows).logits[0]
            else:
                logits = self.model(input_ids=window).logits[0, rows]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            chosen = torch.tensor([ids[t] for t in here], device=self.device)
            values = logprobs.gather(1, chosen[:, None])[:, 0]
            top = logprobs.argmax(dim=-1) == chosen
            for k, t in enumerate(here):
                found[t] = (float(values[k]), bool(top[k]), self.tokenizer.decode([ids[t]]))
        return found

    # --- sampling ----------------------------------------------------------------------

    def _prompt_ids(self, request: SampleRequest) -> list[int]:
        if request.chat:
            return chat_prompt_ids(self.tokenizer, request.prompt)
        return self.tokenizer(request.prompt)["input_ids"]

    def _sample(self, requests: list[SampleRequest], n: int) -> list[list[Sample]]:
        torch = self.torch
        out = []
        with self._lock, torch.inference_mode():
            for r in requests:
                prompt = self._prompt_ids(r)[-self.max_length :]
                ids = torch.tensor([prompt], device=self.device)
                if r.seed is not None:
                    torch.manual_seed(r.seed)
                greedy = r.temperature <= 0
                generated = self.model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=r.max_tokens,
                    do_sample=not greedy,
                    temperature=None if greedy else r.temperature,
                    top_k=0 if not greedy else None,
                    top_p=None,
                    num_return_sequences=n,
                    pad_token_id=self.pad_id,
                    output_scores=True,
                    return_dict_in_generate=True,
                    stop_strings=list(r.stop) or None,
                    tokenizer=self.tokenizer if r.stop else None,
                )
                scores = self.model.compute_transition_scores(
                    generated.sequences, generated.scores, normalize_logits=True
                )
                samples = []
                for row in range(n):
                    new = generated.sequences[row, len(prompt) :].tolist()
                    # Padding after an early end is a special token: skipped when decoding.
                    text = self.tokenizer.decode(new, skip_special_tokens=True)
                    text, finish = _cut_at_stop(text, r.stop, len(new) >= r.max_tokens)
                    samples.append(
                        Sample(
                            text=text,
                            token_logprobs=[float(x) for x in scores[row, : len(new)]],
                            finish_reason=finish,
                            prompt_tokens=len(prompt),
                            completion_tokens=len(new),
                        )
                    )
                out.append(samples)
        return out


def _cut_at_stop(text: str, stop: tuple[str, ...], hit_limit: bool) -> tuple[str, str]:
    """Text up to the first stop string, and why generation ended."""
    cuts = [text.index(s) for s in stop if s in text]
    if cuts:
        return text[: min(cuts)], "stop"
    return text, "length" if hit_limit else "stop"
