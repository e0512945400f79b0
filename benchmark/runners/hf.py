"""Hugging Face transformers on CPU or GPU: exact scoring and sampling, batched.

Scoring tokenises ``context + continuation`` once and reads the log-probabilities of
the continuation's tokens (split by character offsets, see `benchmark.runners.tokens`).
Requests that share a context (the options of an item) form a tree: the shared tokens
once, then the options' tails as a trie (tails that start alike share those tokens), each
node of which sees the prefix, its ancestors and itself (a mask, with positions
continuing the prefix's). Trees are packed into rows and rows into forward passes of at
most ``max_batch_tokens`` padded tokens; the start that all rows of a pass share (a
task's instructions) is read once and its keys and values repeated over the rows. Only the
hidden states that predict a continuation token go through the vocabulary-wide head,
and each log-probability is its logit minus its row's log-sum-exp, so memory grows
with the tokens scored, not with the tokens read.

Sampling runs one ``generate`` call per request (``n`` sequences at once), each seeded
on its own, so a request's samples do not depend on which other requests share the call.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass, field

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
        batch_size: most rows per forward pass when scoring (a row holds one or more
            packed trees).
        revision: recorded only (the folder is the revision).
        gguf_file: load a GGUF file of the folder instead of safetensors.
        max_length: longest sequence; longer contexts are cut from the left.
        max_batch_tokens: most padded tokens per scoring forward pass (rows × width);
            only a single sequence longer than this gets a pass of its own.
        pack_tokens: short trees are packed into rows of up to this many tokens.

    Raises:
        ValueError: ``batch_size``, ``max_batch_tokens`` or ``pack_tokens`` below 1.
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
        max_batch_tokens: int = 4096,
        pack_tokens: int = 512,
    ):
        for name, value in (
            ("batch_size", batch_size),
            ("max_batch_tokens", max_batch_tokens),
            ("pack_tokens", pack_tokens),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"hf runner: {name} must be a whole number of at least 1, not {value!r}"
                )
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.pack_tokens = pack_tokens
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
        # Layers that attend to a sliding window build their own masks and crop their
        # caches: trees must fit the window and no start is read once (see `_units`).
        self._window = sliding_window(self.model.config)
        self._check_paths()
        if not self.tokenizer.chat_template:  # a base model without a template cannot chat
            self.capabilities = type(self).capabilities - {CHAT}
        self.check_model()

    def __repr__(self):
        return f"HFRunner({self.model.name_or_path!r}, device={self.device!r})"

    def _check_paths(self) -> None:
        """Which fast paths reproduce the model's own forward pass on short sequences.

        Sets whether the output head can be applied to chosen hidden states of the
        decoder (not for heads with soft-capping or scaling); whether a tree mask (two
        tails after one prefix, packed in one row) gives the logits of the sequences read
        alone (not for attention kernels that ignore custom masks); and whether two rows
        that start alike can read their start once, from a cache repeated over the rows.
        """
        torch = self.torch
        vocab = self.model.config.get_text_config().vocab_size
        ids = [(7 * k + 3) % vocab for k in range(MIN_SHARED + 8)]
        tolerance = 1e-4 if self.model.dtype == torch.float32 else 5e-2
        self._decoder = self.model.get_decoder()
        self._head = self.model.get_output_embeddings()
        self._split = self._trees = self._shares = False

        def alone(seq, picks):
            logits = self.model(input_ids=torch.tensor([seq], device=self.device)).logits[0]
            logp = torch.log_softmax(logits.float(), dim=-1)
            return [float(logp[j - 1, seq[j]]) for j in picks]

        def agrees(packed, by_hand):
            return max(abs(a - b) for a, b in zip(packed, by_hand, strict=True)) <= tolerance

        with torch.inference_mode():
            if self._head is not None:
                whole = self.model(input_ids=torch.tensor([ids[:10]], device=self.device))
                hidden = self._decoder(
                    input_ids=torch.tensor([ids[:10]], device=self.device), use_cache=False
                ).last_hidden_state
                self._split = torch.allclose(
                    self._head(hidden)[0].float(), whole.logits[0].float(), atol=tolerance, rtol=0
                )
            # Three tails of three tokens after one prefix, packed in one row; two start
            # alike, so the third's last tokens are predicted from nodes deeper in the trie.
            seqs = [ids[:9], ids[:6] + ids[9:12], ids[:7] + ids[10:12]]
            encoded = [(seq, 3) for seq in seqs]
            self._trees = True
            results: list = [None] * 3
            for batch in self._batches(self._units(encoded, [0, 1, 2])):
                self._score_batch(batch, encoded, results)
            packed = [x for r in results for x in r.token_logprobs]
            self._trees = agrees(packed, [x for seq in seqs for x in alone(seq, (6, 7, 8))])
            if self._trees and self._window is None:
                # Two rows of two tails each, whose contexts share MIN_SHARED tokens.
                n = MIN_SHARED
                contexts = (ids[: n + 2], ids[:n] + ids[n + 4 : n + 6])
                seqs = [c + t for c in contexts for t in (ids[n + 2 : n + 4], ids[n + 6 : n + 8])]
                encoded = [(seq, 2) for seq in seqs]
                rows = []
                for members in ([0, 1], [2, 3]):
                    (unit,) = self._units(encoded, members)
                    rows.append(_Row(len(unit.prefix), unit.length, [unit]))
                self._shares = True
                results = [None] * 4
                self._score_batch(rows, encoded, results)
                packed = [x for r in results for x in r.token_logprobs]
                by_hand = [x for seq in seqs for x in alone(seq, (n + 2, n + 3))]
                self._shares = agrees(packed, by_hand)

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
        # Requests that share a context (the options of one item) share one reading of it.
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.context, []).append(i)
        units = [u for members in groups.values() for u in self._units(encoded, members)]
        results: list[ScoreResult | None] = [None] * len(requests)
        with self._lock, self.torch.inference_mode():
            for batch in self._batches(units):
                self._score_batch(batch, encoded, results)
        return results

    def _units(self, encoded, members: list[int]) -> list[_Unit]:
        """Requests with one context as trees: the shared tokens once, then each tail.

        A tree longer than the token budget is split into several, each with the prefix.
        Without tree masks (see `_check_paths`), and for a tree longer than the model's
        sliding window, every request is a sequence of its own (read with the model's
        own masks).
        """
        if not self._trees:
            return self._alone(encoded, members)
        seqs = [encoded[i][0] for i in members]
        prefix = min(len(s) - n for s, n in (encoded[i] for i in members))
        while prefix > 0 and any(s[:prefix] != seqs[0][:prefix] for s in seqs[1:]):
            prefix -= 1
        head = seqs[0][:prefix]
        units = [_Unit(head)]
        for i, seq in zip(members, seqs, strict=True):
            tail = seq[prefix:]
            last = units[-1]
            if last.requests and last.length + len(tail) > self.max_batch_tokens:
                units.append(last := _Unit(head))
            last.add(i, tail)
        if self._window is not None and any(u.length > self._window for u in units):
            return self._alone(encoded, members)
        return units

    @staticmethod
    def _alone(encoded, members: list[int]) -> list[_Unit]:
        """Each request as a tree of one tail: a plain sequence."""
        units = []
        for i in members:
            seq, n = encoded[i]
            units.append(unit := _Unit(seq[:-n]))
            unit.add(i, seq[-n:])
        return units

    def _batches(self, units: list[_Unit]) -> list[list[_Row]]:
        """Forward passes: rows of packed trees, at most ``max_batch_tokens`` padded tokens each.

        Trees in token order, so that those whose contexts start alike (the items of one
        task share its instructions) are neighbours, go into rows of up to
        ``pack_tokens`` that read their common start once (a longer tree gets a row of
        its own); rows of similar length are padded into one pass while rows × width
        stays within the budget (a single row longer than it goes alone).
        """
        rows: list[_Row] = []
        for unit in sorted(units, key=lambda u: u.prefix) if self._trees else units:
            row = rows[-1] if self._trees and rows else None
            if row is not None:
                first, root = row.units[0].prefix, 0
                while root < min(row.root, len(unit.prefix)) and first[root] == unit.prefix[root]:
                    root += 1
                length = row.total + unit.length - root * len(row.units)
                if length <= self.pack_tokens and (self._window is None or length <= self._window):
                    row.root, row.total = root, row.total + unit.length
                    row.units.append(unit)
                    continue
            rows.append(_Row(len(unit.prefix), unit.length, [unit]))
        # Rows of one sequence, longest first; rows of trees stay in token order, so that
        # the rows of a pass share their start (read once, see `_score_batch`).
        rows.sort(key=lambda r: (0, 0) if not r.plain else (1, -r.length))
        batches: list[list[_Row]] = []
        for row in rows:
            if batches:
                last = batches[-1]
                width = max(row.length, *(r.length for r in last))
                narrow = min(row.length, *(r.length for r in last))
                if (
                    len(last) < self.batch_size
                    and (len(last) + 1) * width <= self.max_batch_tokens
                    and narrow * PADDING_RATIO >= width  # little padding
                ):
                    last.append(row)
                    continue
            batches.append([row])
        return batches

    def _score_batch(self, rows: list[_Row], encoded, results: list) -> None:
        """One forward pass over packed rows; logits only at rows that predict a target.

        A row reads its root (the start its trees share) once, then each tree's own
        prefix, which sees the root, then the trie of the tree's tails, each node of which
        sees root, prefix, its ancestors and itself.
        """
        torch = self.torch
        width = max(row.length for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        # One sequence per row: right-padded, so causal attention alone keeps every real
        # token from seeing the padding after it; no mask lets attention skip the masked
        # half (SDPA's causal path: a padded pair of 1,500-token rows took 22 % longer with
        # a padding mask than without).
        plain = all(row.plain for row in rows)
        mask = None
        if not plain:
            allowed = torch.zeros((len(rows), width, width), dtype=torch.bool)
            causal = torch.ones((width, width), dtype=torch.bool).tril()
        wanted: list[tuple[int, int, int]] = []  # (batch row, column, target token)
        owners: list[tuple[int, int, int]] = []  # (request, first wanted index, count)
        for b, row in enumerate(rows):
            r = row.root
            ids[b, :r] = torch.tensor(row.units[0].prefix[:r], dtype=torch.long)
            positions[b, :r] = torch.arange(r)
            if not plain:
                allowed[b, :r, :r] = causal[:r, :r]
            at = r
            for unit in row.units:
                p = len(unit.prefix)
                g = p - r  # the tree's own prefix after the root
                ids[b, at : at + g] = torch.tensor(unit.prefix[r:], dtype=torch.long)
                positions[b, at : at + g] = torch.arange(r, p)
                if not plain:
                    allowed[b, at : at + g, :r] = True
                    allowed[b, at : at + g, at : at + g] = causal[:g, :g]
                t, n = at + g, len(unit.tokens)  # the tails' trie
                ids[b, t : t + n] = torch.tensor(unit.tokens, dtype=torch.long)
                positions[b, t : t + n] = p + torch.tensor(unit.depths, dtype=torch.long)
                if not plain:
                    allowed[b, t : t + n, :r] = True
                    allowed[b, t : t + n, at : at + g] = True
                    allowed[b, t : t + n, t : t + n] = unit.ancestry(torch)
                for i, path in zip(unit.requests, unit.paths, strict=True):
                    seq, n_cont = encoded[i]
                    owners.append((i, len(wanted), n_cont))
                    for j in range(len(seq) - n_cont, len(seq)):
                        # Token j is predicted at j - 1: in the root, the prefix or the tail.
                        k = j - 1
                        column = k if k < r else at + k - r if k < p else t + path[k - p]
                        wanted.append((b, column, seq[j]))
                at = t + n
            if not plain:
                allowed[b, range(at, width), range(at, width)] = True  # padding sees itself
        shared = 0
        if not plain:
            mask = torch.zeros(allowed.shape, dtype=self.model.dtype)
            mask.masked_fill_(~allowed, torch.finfo(self.model.dtype).min)
            mask = mask[:, None]
            shared = self._shared_start(rows, min(w[1] for w in wanted))
        values, top = self._logprobs_at(ids, mask, positions, wanted, shared)
        for i, first, count in owners:
            seq, n_cont = encoded[i]
            token_lp = values[first : first + count]
            results[i] = ScoreResult(
                logprob=float(token_lp.sum()),
                token_logprobs=[float(x) for x in token_lp],
                tokens=[self.tokenizer.decode([t]) for t in seq[-n_cont:]],
                greedy=bool(top[first : first + count].all()),
            )

    def _shared_start(self, rows: list[_Row], first_wanted: int) -> int:
        """How many leading tokens all rows of a pass share, when worth reading once.

        Only tokens of the rows' roots, and none whose hidden state is wanted; 0 for a
        single row, a start shorter than ``MIN_SHARED`` or a model on which reading a
        start once does not reproduce reading it per row (see `_check_paths`).
        """
        if not self._shares or len(rows) < 2:
            return 0
        first = rows[0].units[0].prefix
        limit = min(first_wanted, *(row.root for row in rows))
        shared = 0
        while shared < limit and all(r.units[0].prefix[shared] == first[shared] for r in rows):
            shared += 1
        return shared if shared >= MIN_SHARED else 0

    def _logprobs_at(self, ids, mask, positions, wanted, shared: int = 0):
        """Log-probability of each wanted (row, column, token), and whether it was the top choice.

        Only the wanted positions go through the vocabulary-wide head, ``HEAD_ROWS`` at a
        time; each value is its logit minus the log-sum-exp of its row. With ``shared``,
        the first ``shared`` columns (the same tokens in every row) are read once, in a
        pass of their own, and their keys and values repeated over the rows.
        """
        torch = self.torch
        device = self.device
        rows = torch.tensor([w[0] for w in wanted], device=device)
        columns = torch.tensor([w[1] - shared for w in wanted], device=device)
        targets = torch.tensor([w[2] for w in wanted], device=device)
        inputs = {"input_ids": ids[:, shared:].to(device), "use_cache": False}
        if mask is not None:  # a tree mask; plain rows use the model's own causal mask
            inputs |= {
                "attention_mask": mask[:, :, shared:].to(device),
                "position_ids": positions[:, shared:].to(device),
            }
        if shared:
            start = ids[:1, :shared].to(device)
            cache = self._decoder(input_ids=start, use_cache=True).past_key_values
            cache.batch_repeat_interleave(len(ids))
            inputs |= {"past_key_values": cache, "use_cache": True}
        if self._split:
            hidden = self._decoder(**inputs).last_hidden_state[rows, columns]
            del inputs
            pick = range(0, len(wanted), HEAD_ROWS)
            chunks = [self._head(hidden[s : s + HEAD_ROWS]) for s in pick]
        else:  # a model whose head is not a plain projection: its own forward, kept rows only
            keep, where = torch.unique(columns, return_inverse=True)
            if self._keeps_rows:
                logits = self.model(**inputs, logits_to_keep=keep).logits
            else:
                logits = self.model(**inputs).logits[:, keep]
            chunks = [logits[rows, where]]
        values, top, start = [], [], 0
        for logits in chunks:
            logits = logits.float()
            chosen = targets[start : start + len(logits)]
            picked = logits.gather(1, chosen[:, None])[:, 0]
            values.append(picked - torch.logsumexp(logits, dim=-1))
            top.append(logits.argmax(dim=-1) == chosen)
            start += len(logits)
        return torch.cat(values).cpu(), torch.cat(top).cpu()

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

        Only the rows that predict targets are turned into logits (see `_logprobs_at`).
        """
        torch = self.torch
        found = {}
        targets = set(targets)
        for start, end, first in windows(len(ids), self.max_length):
            here = [t for t in range(first, end) if t in targets]
            if not here:
                continue
            window = torch.tensor([ids[start:end]])
            wanted = [(0, t - start - 1, ids[t]) for t in here]
            values, top = self._logprobs_at(window, None, None, wanted)  # one unpadded row
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


def sliding_window(config) -> int | None:
    """The attention window of a model with sliding-window layers (Gemma 3), else None."""
    text = config.get_text_config()
    window = getattr(text, "sliding_window", None)
    types = getattr(text, "layer_types", None)
    if not window or getattr(text, "use_sliding_window", True) is False:
        return None
    if types is not None and "sliding_attention" not in types:
        return None
    return int(window)


def _cut_at_stop(text: str, stop: tuple[str, ...], hit_limit: bool) -> tuple[str, str]:
    """Text up to the first stop string, and why generation ended."""
    cuts = [text.index(s) for s in stop if s in text]
    if cuts:
        return text[: min(cuts)], "stop"
    return text, "length" if hit_limit else "stop"


HEAD_ROWS = 1024  # hidden states turned into vocabulary-wide logits at a time
# A start shared by the rows of a pass is read once when at least this long (a pass of
# its own costs more than re-reading a few tokens).
MIN_SHARED = 16
# Rows padded into one pass: the narrowest at least 1 / PADDING_RATIO of the widest.
PADDING_RATIO = 1.5


@dataclass
class _Unit:
    """Requests with one context: the shared tokens, then the requests' tails as a trie.

    Tails that start alike (``10%`` … ``19%`` after a population item's answer slot)
    share their first tokens: each distinct (parent, token) is one node, read once.
    Nodes are kept in the order they were added, so a parent comes before its children.
    """

    prefix: list[int]
    requests: list[int] = field(default_factory=list)  # indices of the requests
    paths: list[list[int]] = field(default_factory=list)  # each request's tail, as nodes
    tokens: list[int] = field(default_factory=list)  # each node's token
    parents: list[int] = field(default_factory=list)  # -1: the node follows the prefix
    depths: list[int] = field(default_factory=list)  # 0: the node follows the prefix
    _nodes: dict[tuple[int, int], int] = field(default_factory=dict, repr=False)

    def add(self, request: int, tail: list[int]) -> None:
        """Add a request's tail, sharing the nodes of any tail it starts like."""
        path, parent = [], -1
        for token in tail:
            node = self._nodes.get((parent, token))
            if node is None:
                node = self._nodes[parent, token] = len(self.tokens)
                self.tokens.append(token)
                self.parents.append(parent)
                self.depths.append(self.depths[parent] + 1 if parent >= 0 else 0)
            path.append(node)
            parent = node
        self.requests.append(request)
        self.paths.append(path)

    def ancestry(self, torch):
        """Which nodes each node sees: its ancestors and itself (causal for one chain)."""
        n = len(self.tokens)
        if all(parent == k - 1 for k, parent in enumerate(self.parents)):
            return torch.ones((n, n), dtype=torch.bool).tril()
        seen = torch.zeros((n, n), dtype=torch.bool)
        for k, parent in enumerate(self.parents):
            if parent >= 0:
                seen[k] = seen[parent]
            seen[k, k] = True
        return seen

    @property
    def length(self) -> int:
        return len(self.prefix) + len(self.tokens)


@dataclass
class _Row:
    """Trees packed in one row: the first ``root`` prefix tokens are common to all of them."""

    root: int
    total: int  # tokens of the trees, each counted whole
    units: list[_Unit]

    @property
    def length(self) -> int:
        return self.total - self.root * (len(self.units) - 1)

    @property
    def plain(self) -> bool:
        """One sequence: one tree with one tail."""
        return len(self.units) == 1 and len(self.units[0].requests) == 1
