"""From model outputs to answer distributions over a task's options.

Exact: score every option as a continuation of the prompt and renormalise. The
continuation is the option's own tokens after the prompt's ``<<``: the probability that
the answer the model starts to write is this option. The closing ``>>`` is appended only
where the options are not prefix-free ("1" and "10": P("1") would include "10"), because
a model rarely closes the bracket right after its answer and P(option + ``>>``) then
measures the bracket more than the answer. The probability that the model says
something else altogether is reported as ``mass_outside``.

Sampled: parse each generation to an option; answers that cannot be parsed are
counted as ``unparsed``, never dropped.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from benchmark.runners.base import Runner, ScoreRequest


@dataclass(frozen=True)
class OptionDistribution:
    """Probabilities over options; how they were obtained and what fell outside."""

    probs: dict[str, float]
    mode: str
    logprobs: dict[str, float] = field(default_factory=dict)
    mass_outside: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    closing: str = ""


CLOSE = ">>"
# What an exact distribution is; recorded on every exact run and part of its prompt hash.
EXACT_DEFINITION = (
    "P(option tokens | prompt ending in '<<'), with '>>' appended to every option of an "
    "item whose options are not prefix-free; renormalised over the options, the mass "
    "outside them kept"
)


def closing_for(options: list[str], close: str = CLOSE) -> str:
    """``close`` when an option is a prefix of another (then it must be closed), else ``""``.

    Prefix-free strings are prefix-free token sequences for any tokenizer (the tokens of
    a prefix decode to a prefix), so the string test never leaves a prefix unclosed; it
    may close options that a particular tokenizer would already keep apart.

    Args:
        options: the answers to tell apart.
        close: the marker that ends an answer (``>>`` after ``<<``; ``%`` after a number).
    """
    return close if any(a != b and b.startswith(a) for a in options for b in options) else ""


def renormalise(logprobs: list[float]) -> tuple[list[float], float]:
    """Probabilities renormalised over the given log-probabilities, and the mass outside them.

    Computed from the largest log-probability down, so that very unlikely answers do
    not underflow to a zero total.
    """
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    inside = math.exp(top) * total
    return [w / total for w in weights], min(1.0, max(0.0, 1.0 - inside))


def option_distribution(
    runner: Runner, prompt: str, options: list[str], closing: str | None = None
) -> OptionDistribution:
    """Exact distribution over ``options`` after ``prompt`` (which ends with ``<<``).

    Args:
        runner: a runner that can score continuations.
        prompt: the text before the answer, ending with ``<<``.
        options: the option keys.
        closing: appended to every option; None decides by `closing_for`.

    Returns:
        ``probs`` renormalised over the options (sums to 1), the raw ``logprobs`` of
        each ``option + closing`` continuation, ``mass_outside`` = 1 − their total, and
        the ``closing`` used.
    """
    return option_distributions(runner, [(prompt, options, closing)])[0]


def option_distributions(
    runner: Runner, items: list[tuple[str, list[str], str | None]]
) -> list[OptionDistribution]:
    """`option_distribution` of several items from one ``score`` call.

    A runner reads the requests of one call together: the hf runner packs the items into
    rows that read their shared instructions once, the HTTP runners send them in batches.

    Args:
        runner: a runner that can score continuations.
        items: ``(prompt, options, closing)`` per item; a None closing decides by
            `closing_for`.

    Returns:
        One distribution per item, in order.
    """
    closings = [closing_for(options) if c is None else c for _, options, c in items]
    requests = [
        ScoreRequest(prompt, option + closing)
        for (prompt, options, _), closing in zip(items, closings, strict=True)
        for option in options
    ]
    results = iter(runner.score(requests))
    out = []
    for (_, options, _), closing in zip(items, closings, strict=True):
        logprobs = {o: next(results).logprob for o in options}
        probs, mass_outside = renormalise(list(logprobs.values()))
        out.append(
            OptionDistribution(
                probs=dict(zip(options, probs, strict=True)),
                mode="exact",
                logprobs=logprobs,
                mass_outside=mass_outside,
                closing=closing,
            )
        )
    return out


_WRAPPERS = re.compile(r"^[\s\"'`*(\[<]*(?:option|answer|choice|gamble|key)?[\s:]*", re.I)


def parse_option(text: str, options: list[str]) -> str | None:
    """The option a generated answer names, or None when it names none or several.

    Accepts "4", "4>>", " 4.", "Option B", "B) because …", "**B**". An exact key
    match comes first; then a key at the start closed by punctuation or the end
    ("B) …", "4."); then the one key that stands alone anywhere in the answer (not
    inside a longer word or number). "A or B" names two keys and gives None.
    """
    cleaned = text.strip()
    for marker in (">>", "\n"):
        cleaned = cleaned.split(marker, 1)[0]
    cleaned = cleaned.strip()
    if cleaned in options:
        return cleaned
    head = _WRAPPERS.sub("", cleaned)
    for key in sorted(options, key=len, reverse=True):
        if re.match(rf"{re.escape(key)}(?:$|[^\sA-Za-z0-9])", head):
            return key
    found = {
        key
        for key in options
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(key)}(?![A-Za-z0-9])", cleaned)
    }
    return found.pop() if len(found) == 1 else None


def distribution_from_samples(texts: list[str], options: list[str]) -> OptionDistribution:
    """Share of parsed samples per option; ``counts`` includes ``unparsed``.

    ``probs`` is over the parsed samples (all zero when none parsed) and
    ``mass_outside`` is the share of samples that named no option.

    Raises:
        ValueError: no samples.
    """
    if not texts:
        raise ValueError("no samples to count")
    counts = dict.fromkeys(options, 0)
    unparsed = 0
    for text in texts:
        key = parse_option(text, options)
        if key is None:
            unparsed += 1
        else:
            counts[key] += 1
    parsed = sum(counts.values())
    probs = {o: (c / parsed if parsed else 0.0) for o, c in counts.items()}
    return OptionDistribution(
        probs=probs,
        mode="sampled",
        mass_outside=unparsed / len(texts),
        counts={**counts, "unparsed": unparsed},
    )


_PAIR = re.compile(r"(?<![A-Za-z0-9])([A-Za-z0-9]+)\s*[:=\-–]\s*([0-9]+(?:\.[0-9]+)?)\s*(%?)")


def parse_percentages(text: str, options: list[str]) -> dict[str, float] | None:
    """A stated distribution over options ("A: 30%, B: 70%" or JSON), normalised to 1.

    Returns None when an option is missing, a value is negative, or the values do not
    sum to something near 100% (or 1): a garbled answer is not guessed at.
    """
    values: dict[str, float] = {}
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        try:
            obj = json.loads(text[start : end + 1])
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            for key, value in obj.items():
                if str(key) in options and isinstance(value, int | float):
                    values[str(key)] = float(value)
    if not values:
        for key, number, _ in _PAIR.findall(text):
            if key in options and key not in values:
                values[key] = float(number)
    if set(values) != set(options) or any(v < 0 for v in values.values()):
        return None
    total = sum(values.values())
    if not (0.9 <= total <= 1.1 or 90 <= total <= 110):
        return None
    return {o: values[o] / total for o in options}
