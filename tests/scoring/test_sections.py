"""Third-person and link sections on hand-made frames, checked against scipy and by hand."""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from scoring.reports.data import HumanItems, ItemSet, ModelItems, RunInfo
from scoring.reports.first_person import first_person
from scoring.reports.link import link
from scoring.reports.third_person import third_person

KEYS = ["a", "b", "c", "d"]
ITEMS = ItemSet(
    keys=KEYS,
    options={k: ["1", "2", "3"] for k in KEYS},
    values={k: [1.0, 2.0, 3.0] for k in KEYS},
    scales=dict.fromkeys(KEYS, "S"),
    reverse=dict.fromkeys(KEYS, False),
    kind="questionnaire",
    low=1,
    high=3,
)
COUNTS = np.array([[10, 5, 5], [2, 8, 10], [6, 6, 8], [1, 1, 18]], dtype=float)
HUMAN = HumanItems(
    dataset="people",
    content_sha256="x",
    keys=KEYS,
    answers=None,
    counts=COUNTS,
    item_n=COUNTS.sum(axis=1),
    people=20,
)
PARAMS = {"resamples": 300, "seed": 1, "confidence": 0.95}


def info(n, name, mode):
    return RunInfo(
        id=n,
        label=name,
        endpoint=name,
        provider="hf",
        model=name,
        revision="",
        base_model=None,
        post_trained=False,
        release_date=None,
        task="t",
        task_version=1,
        mode=mode,
        scoring_mode="exact",
        prompt_variant="neutral",
        prompt_hash="",
        with_profile=False,
        seed=0,
        samples_per_item=1,
        dataset=None,
    )


def model(seed, keys=KEYS, unparsed=0.0):
    dist = np.random.default_rng(seed).dirichlet(np.ones(3), size=len(keys))
    return ModelItems(
        keys=list(keys),
        dist=dist,
        samples=None,
        unparsed=unparsed,
        path="exact",
        per_item_n=np.ones(len(keys)),
    )


def test_third_person_scores_equal_scipy_and_hand_computations():
    predicted = model(1)
    silent = model(2, keys=[], unparsed=1.0)
    section = third_person(
        [
            (info(1, "m1", "predict_population"), predicted),
            (info(2, "m2", "predict_population"), silent),
        ],
        HUMAN,
        ITEMS,
        PARAMS,
    )
    h = COUNTS / COUNTS.sum(axis=1, keepdims=True)
    p = predicted.dist
    js = [1 - jensenshannon(a, b, base=2) for a, b in zip(p, h, strict=True)]
    w1 = [1 - np.abs(np.cumsum(a - b))[:2].sum() / 2 for a, b in zip(p, h, strict=True)]
    r = stats.pearsonr(p @ [1, 2, 3], h @ [1, 2, 3]).statistic
    first, second = section.summary["runs"]
    assert first["js_similarity"]["value"] == pytest.approx(np.mean(js), abs=1e-6)
    assert first["opinionqa"]["value"] == pytest.approx(np.mean(w1), abs=1e-6)
    assert first["item_mean_correlation"] == pytest.approx(r, abs=1e-6)
    rng = np.random.default_rng(1)
    draws = np.asarray(js)[rng.integers(0, 4, size=(300, 4))].mean(axis=1)
    assert first["js_similarity"]["low"] == pytest.approx(np.percentile(draws, 2.5), abs=1e-6)
    assert (second["items"], second["unparsed_share"]) == (0, 1.0)
    assert "no prediction parsed (100% of samples unparsed)" in section.notes[0]


def test_link_correlates_first_and_third_person_across_models():
    runs_first = [(info(n, f"m{n}", "participant"), model(10 + n)) for n in range(5)]
    runs_third = [(info(10 + n, f"m{n}", "predict_population"), model(20 + n)) for n in range(5)]
    first = first_person(runs_first, HUMAN, ITEMS, {**PARAMS, "resamples": 60})
    third = third_person(runs_third, HUMAN, ITEMS, PARAMS)
    section = link(first, third)
    h = COUNTS / COUNTS.sum(axis=1, keepdims=True)
    fp = [
        1 - np.mean([jensenshannon(c, p, base=2) for c, p in zip(h, m.dist, strict=True)])
        for _, m in runs_first
    ]
    tp = [
        np.mean([1 - jensenshannon(p, c, base=2) for c, p in zip(h, m.dist, strict=True)])
        for _, m in runs_third
    ]
    r = stats.pearsonr(fp, tp).statistic
    z, se = np.arctanh(r), 1 / np.sqrt(5 - 3)
    got = section.summary["correlation"]
    assert section.summary["n"] == 5
    assert got["value"] == pytest.approx(r, abs=1e-5)
    assert (got["low"], got["high"]) == (
        pytest.approx(np.tanh(z - 1.959964 * se), abs=1e-5),
        pytest.approx(np.tanh(z + 1.959964 * se), abs=1e-5),
    )
    few = link(first, third_person(runs_third[:2], HUMAN, ITEMS, PARAMS))
    assert few.summary["correlation"] is None and few.summary["n"] == 2


def test_individual_gain_in_bits_by_hand_with_an_interval_over_people():
    from scoring.reports.data import IndividualPredictions
    from scoring.reports.individual import individual_section

    # Two people; person 7 answered item a (option 0) and item d (option 2), person 9
    # answered item b (option 1). Their answers are among COUNTS.
    pred = IndividualPredictions(
        keys=KEYS,
        item=np.array([0, 3, 1]),
        person=np.array([7, 7, 9]),
        predicted=np.array([[0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [0.25, 0.5, 0.25]]),
        answer=np.array([0, 2, 1]),
        unparsed=0.0,
        path="exact",
        names={7: "p7", 9: "p9"},
    )
    section = individual_section(
        [(info(3, "m3", "predict_individual"), pred)], HUMAN, ITEMS, PARAMS
    )
    # Without the person, one added per option: a (10, 5, 5) → (9+1, 6, 6)/22 → 10/22;
    # d (1, 1, 18) → (2, 2, 17+1)/22 → 18/22; b (2, 8, 10) → (3, 7+1, 11)/22 → 8/22.
    gains = [
        math.log2(0.6 / (10 / 22)),  # 0.400538
        math.log2(0.8 / (18 / 22)),  # -0.032421
        math.log2(0.5 / (8 / 22)),  # 0.459432
    ]
    assert gains == pytest.approx([0.400538, -0.032421, 0.459432], abs=1e-6)
    (row,) = section.summary["runs"]
    assert section.summary["unit"] == "bits per response"
    assert (row["responses"], row["people"], row["path"]) == (3, 2, "exact")
    assert row["gain_bits"]["value"] == pytest.approx(np.mean(gains), abs=1e-6)
    # Resampling the two people: means of person 7 twice, 9 twice, or all three answers.
    person7, person9 = np.mean(gains[:2]), gains[2]
    assert row["gain_bits"]["low"] == pytest.approx(person7, abs=1e-6)
    assert row["gain_bits"]["high"] == pytest.approx(person9, abs=1e-6)
    people = section.tables["individual_participants"]
    assert list(people["participant"]) == ["p7", "p9"]
    assert list(people["gain_bits"]) == pytest.approx([person7, person9], abs=1e-6)
