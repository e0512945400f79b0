"""Exact population predictions: each option's expected percentage from log-probabilities.

A ``predict_population`` prompt asks for answers in the form ``1: x%, 2: x%, …`` after
``Answer:``. For each option ``o`` the runner scores the 101 continuations ``"0%"`` …
``"100%"`` after ``prompt + " o: "`` (the answer slot of that form); the numbers'
probabilities, renormalised over the 101 of them, give the model's expected percentage
for ``o``. The expected percentages, renormalised across the options, are the prediction
(they sum to 100 %). The ``%`` closes every number, so ``"1%"`` does not include
``"10%"`` (the numbers alone are not prefix-free; see
`benchmark.runners.options.closing_for`); the probability of anything else in the slot is
kept as the option's ``mass_outside``. A tokenizer that writes the space and the first
digit as one token (``" 3"``) scores it with the number, by the rule of
`benchmark.runners.tokens` (a token that straddles the context's end belongs to the
continuation); one that keeps the space apart (SmolLM2) scores the digits after it.

All continuations of an item go to the runner in one ``score`` call: the hf runner
reads each option's context once and its 101 numbers as the tails of one tree.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.runners.base import Runner, ScoreRequest
from benchmark.runners.options import closing_for, renormalise

NUMBERS = tuple(str(n) for n in range(101))
PERCENT = "%"
# What an exact population prediction is; recorded on every such run and in its prompt hash.
POPULATION_EXACT_DEFINITION = (
    "for each option o: E_o = sum over n in 0..100 of n * P('n%' | prompt + ' o: '), with P "
    "renormalised over the 101 numbers; predicted share of o = E_o / sum of E over the "
    "options (sums to 100%); the mass outside the numbers is kept per option"
)


@dataclass(frozen=True)
class PopulationPrediction:
    """Predicted shares of the options and how they were obtained.

    ``probs`` sums to 1 (``percent`` is the same in percent); ``expected`` is each
    option's expected percentage before the renormalisation across options;
    ``numbers`` the renormalised distribution over 0–100 per option; ``mass_outside``
    per option the probability of something other than a number and ``%``.
    """

    probs: dict[str, float]
    percent: dict[str, float]
    expected: dict[str, float]
    numbers: dict[str, list[float]]
    mass_outside: dict[str, float]
    closing: str


def answer_context(prompt: str, option: str) -> str:
    """The text before an option's number: the prompt's ``Answer:``, then ``" o: "``."""
    return f"{prompt} {option}: "


def number_continuations() -> list[str]:
    """``"0%"`` … ``"100%"``, closed so that no number's text is a prefix of another's."""
    closing = closing_for(list(NUMBERS), close=PERCENT)
    return [f"{n}{closing}" for n in NUMBERS]


def population_prediction(runner: Runner, prompt: str, options: list[str]) -> PopulationPrediction:
    """Exact population prediction over ``options`` after ``prompt`` (ending in ``Answer:``).

    Args:
        runner: a runner that can score continuations.
        prompt: the population question, as `benchmark.services.runs.population_prompt`
            writes it.
        options: the option keys.

    Returns:
        The prediction; see `PopulationPrediction`.

    Raises:
        ValueError: no options, or every option's expected percentage is 0.
    """
    if not options:
        raise ValueError("no options to predict")
    continuations = number_continuations()
    requests = [ScoreRequest(answer_context(prompt, o), c) for o in options for c in continuations]
    results = runner.score(requests)
    values = [float(n) for n in NUMBERS]
    expected, numbers, outside = {}, {}, {}
    for k, option in enumerate(options):
        chunk = results[k * len(NUMBERS) : (k + 1) * len(NUMBERS)]
        probs, mass_outside = renormalise([r.logprob for r in chunk])
        numbers[option] = probs
        outside[option] = mass_outside
        expected[option] = sum(v * p for v, p in zip(values, probs, strict=True))
    total = sum(expected.values())
    if total <= 0:
        raise ValueError("every option's expected percentage is 0: no prediction")
    probs = {o: e / total for o, e in expected.items()}
    return PopulationPrediction(
        probs=probs,
        percent={o: 100 * p for o, p in probs.items()},
        expected=expected,
        numbers=numbers,
        mass_outside=outside,
        closing=PERCENT,
    )
