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
