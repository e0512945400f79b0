"""Where a continuation's tokens start, shared by the runners that tokenise locally.

The text ``context + continuation`` is tokenised once, as the model would read it.
The continuation's tokens are those that end after the last character of the
context: a token that straddles the boundary (``"<<"`` + ``"4"`` read as one token
``"<<4"``) belongs to the continuation. So the score is always of the tokens the
model really sees, never of an unnatural split, and it is the same rule as the
OpenAI-compatible runner applies to ``text_offset``. Options that share a context
are then compared on the same footing: each score is the probability of the text
from the start of the first straddling token onwards.
"""

from __future__ import annotations


def continuation_split(tokenizer, context: str, continuation: str) -> tuple[list[int], int]:
    """Token ids of ``context + continuation`` and how many of them are the continuation.

    Fast tokenizers split by character offsets; others at the longest common prefix
    of the token ids of the context and of the whole text, which is the same split.

    Raises:
        ValueError: the continuation is empty, or its first token would be the first
            token of the text (nothing to condition it on).
    """
    if not continuation:
        raise ValueError(f"empty continuation after {context[-40:]!r}")
    text = context + continuation
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        ids, offsets, special = enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]
        while ids and special[-1]:  # an appended end-of-text token is not the continuation's
            ids, offsets, special = ids[:-1], offsets[:-1], special[:-1]
        boundary = len(context)
        start = next(
            (
                i
                for i, ((_, end), sp) in enumerate(zip(offsets, special, strict=True))
                if not sp and end > boundary
            ),
            len(ids),
        )
    else:
        ids = tokenizer(text)["input_ids"]
        ctx = tokenizer(context)["input_ids"]
        start = 0
        while start < min(len(ids), len(ctx)) and ids[start] == ctx[start]:
            start += 1
    if start >= len(ids):
        raise ValueError(f"no tokens for the continuation {continuation!r}")
    if start == 0:
        raise ValueError(
            f"the continuation {continuation!r} starts the text: give a context, or use a "
            "tokenizer that adds a beginning-of-text token"
        )
    return list(ids), len(ids) - start


def chat_prompt_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids of ``prompt`` as one user message in the tokenizer's chat template."""
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=False,
    )
    # Some versions return a BatchEncoding-like mapping even with return_dict=False.
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def text_encoding(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]], list[int]]:
    """Token ids, character offsets and special-token mask of ``text`` (fast tokenizers).

    A trailing end-of-text token is dropped: it is not part of the text.
    """
    enc = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    ids, offsets, special = enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]
    while ids and special[-1]:
        ids, offsets, special = ids[:-1], offsets[:-1], special[:-1]
    return list(ids), [tuple(o) for o in offsets], list(special)


def span_tokens(
    offsets: list[tuple[int, int]], special: list[int], spans, text: str = ""
) -> list[list[int]]:
    """For each character span, the indexes of the tokens that overlap it.

    The same rule as `continuation_split` at a span's start (a token straddling it
    belongs to the span) and as the OpenAI runner's ``text_offset`` rule.

    Raises:
        ValueError: a span has no tokens, or its first token starts the text.
    """
    picks = []
    for start, end in spans:
        found = [
            i
            for i, ((s, e), sp) in enumerate(zip(offsets, special, strict=True))
            if not sp and s < end and e > start
        ]
        if not found:
            raise ValueError(f"no tokens for the span {text[start:end]!r} at {start}")
        if found[0] == 0:
            raise ValueError(
                f"the span {text[start:end]!r} starts the text: nothing to condition it on"
            )
        picks.append(found)
    return picks


def windows(n_tokens: int, length: int) -> list[tuple[int, int, int]]:
    """Rolling windows over a text longer than the model reads: (start, end, first target).

    Every token from the second on is predicted exactly once; each window predicts the
    tokens from ``first target`` to ``end`` with at least ``length // 2`` tokens of
    context (all preceding tokens while the text fits), so a long transcript costs about
    ``2 * n_tokens / length`` forward passes instead of one per span.
    """
    if length < 2:
        raise ValueError(f"window length must be at least 2, not {length}")
    keep = length - length // 2  # context kept when the window moves on
    out = []
    target = 1
    while target < n_tokens:
        start = max(0, min(target - keep, n_tokens - length))
        end = min(start + length, n_tokens)
        out.append((start, end, target))
        target = end
    return out
