"""Answer parsing and option distributions, on hand-worked examples."""

import math

import pytest

from benchmark.runners.base import Runner, ScoreRequest, ScoreResult
from benchmark.runners.options import (
    distribution_from_samples,
    option_distribution,
    parse_option,
    parse_percentages,
)

ABCD = ["A", "B", "C", "D"]
LIKERT = [str(i) for i in range(1, 11)]


class TableRunner(Runner):
    """Scores from a fixed table: the arithmetic of the distribution checked by hand."""

    name = "table"
    capabilities = frozenset({"score"})

    def __init__(self, table: dict[str, float]):
        self.table = table
        self.seen: list[ScoreRequest] = []

    def _score(self, requests):
        self.seen += requests
        return [ScoreResult(self.table[r.continuation], [], []) for r in requests]

    def _sample(self, requests, n):
        return [[] for _ in requests]


def test_option_distribution_by_hand():
    runner = TableRunner({"A": math.log(0.2), "B": math.log(0.6)})
    d = option_distribution(runner, "You choose <<", ["A", "B"])
    # Prefix-free options: each option's own tokens, no closing marker.
    assert [r.continuation for r in runner.seen] == ["A", "B"]
    assert d.closing == ""
    assert all(r.context == "You choose <<" for r in runner.seen)
    assert d.mode == "exact"
    assert d.probs == pytest.approx({"A": 0.25, "B": 0.75})
    assert d.logprobs == pytest.approx({"A": math.log(0.2), "B": math.log(0.6)})
    assert d.mass_outside == pytest.approx(0.2)


def test_prefix_options_are_told_apart_by_the_closing_marker():
    runner = TableRunner({"1>>": math.log(0.1), "10>>": math.log(0.3)})
    d = option_distribution(runner, "Rate from 1 to 10 <<", ["1", "10"])
    assert [r.continuation for r in runner.seen] == ["1>>", "10>>"]
    assert d.probs == pytest.approx({"1": 0.25, "10": 0.75}) and d.closing == ">>"
    d = option_distribution(
        TableRunner({"1)": -1.0, "10)": -1.0}), "Pick (", ["1", "10"], closing=")"
    )
    assert d.probs == pytest.approx({"1": 0.5, "10": 0.5})


def test_very_unlikely_options_do_not_underflow():
    d = option_distribution(TableRunner({"A": -1000.0, "B": -1001.0}), "x <<", ["A", "B"])
    assert d.probs["A"] == pytest.approx(1 / (1 + math.exp(-1)))
    assert math.fsum(d.probs.values()) == pytest.approx(1.0)
    assert d.mass_outside == 1.0


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("4", LIKERT, "4"),
        ("4>>", LIKERT, "4"),
        (" 4.", LIKERT, "4"),
        ("10", LIKERT, "10"),
        ("10>> because", LIKERT, "10"),
        ("1", LIKERT, "1"),
        ("Option B", ABCD, "B"),
        ("B) because it pays more", ABCD, "B"),
        ("**C**", ABCD, "C"),
        ("Answer: D", ABCD, "D"),
        ("(A)", ABCD, "A"),
        ("I would pick B.", ABCD, "B"),
        ("A or B", ABCD, None),
        ("I cannot answer that.", ABCD, None),
        ("", ABCD, None),
        ("42", LIKERT, None),
        ("Bob", ABCD, None),
        ("left", ["left", "right"], "left"),
        ("  right>>", ["left", "right"], "right"),
    ],
)
def test_parse_option(text, options, expected):
    assert parse_option(text, options) == expected


def test_distribution_from_samples_counts_what_it_cannot_parse():
    texts = ["A", "B>>", "Option B", "no idea", "A or B", " B."]
    d = distribution_from_samples(texts, ["A", "B"])
    assert d.mode == "sampled"
    assert d.counts == {"A": 1, "B": 3, "unparsed": 2}
    assert d.probs == pytest.approx({"A": 0.25, "B": 0.75})
    assert d.mass_outside == pytest.approx(2 / 6)
    assert sum(d.counts.values()) == len(texts)


def test_distribution_from_samples_with_nothing_parsed():
    d = distribution_from_samples(["?", "??"], ["A", "B"])
    assert d.counts == {"A": 0, "B": 0, "unparsed": 2}
    assert d.probs == {"A": 0.0, "B": 0.0}
    assert d.mass_outside == 1.0
    with pytest.raises(ValueError, match="no samples"):
        distribution_from_samples([], ["A", "B"])


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("A: 30%, B: 70%", "AB", {"A": 0.3, "B": 0.7}),
        ("A: 30 %\nB: 70 %", "AB", {"A": 0.3, "B": 0.7}),
        ('{"A": 0.3, "B": 0.7}', "AB", {"A": 0.3, "B": 0.7}),
        ('Here you go: {"A": 30, "B": 70}. Thanks', "AB", {"A": 0.3, "B": 0.7}),
        ("A = 0.25, B = 0.75", "AB", {"A": 0.25, "B": 0.75}),
        ("A: 31%, B: 70%", "AB", {"A": 31 / 101, "B": 70 / 101}),  # near 100: normalised
        ("A: 20%, B: 30%, C: 50%", "ABC", {"A": 0.2, "B": 0.3, "C": 0.5}),
        ("A: 33%, B: 33%, C: 34%", "ABCD", None),  # D is missing
    ],
)
def test_parse_percentages(text, options, expected):
    got = parse_percentages(text, list(options))
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)
        assert math.fsum(got.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "text",
    [
        "A: 30%, B: 30%",  # sums to 60
        "A: 30%",  # B missing
        "A: -10%, B: 110%",  # negative
        '{"A": "lots", "B": 0.5}',
        "I think most people pick A.",
        "",
    ],
)
def test_parse_percentages_rejects_garbage(text):
    assert parse_percentages(text, ["A", "B"]) is None
