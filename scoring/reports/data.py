"""Plain data that report sections read (filled by `scoring.frames` from the database).

No Django here, so sections and benchmarks can build these by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ItemSet:
    """Items of a task version with their options, scales and reverse keys."""

    keys: list[str]
    options: dict[str, list[str]]
    values: dict[str, list[float] | None]
    scales: dict[str, str]
    reverse: dict[str, bool]
    kind: str
    low: float | None = None
    high: float | None = None
    spec_scales: dict = field(default_factory=dict)


@dataclass
class RunInfo:
    """What a report says about a run (and its endpoint)."""

    id: int
    label: str
    endpoint: str
    provider: str
    model: str
    revision: str
    base_model: str | None
    post_trained: bool
    release_date: str | None
    task: str
    task_version: int
    mode: str
    scoring_mode: str
    prompt_variant: str
    prompt_hash: str
    with_profile: bool
    seed: int
    samples_per_item: int
    dataset: str | None


@dataclass
class ModelItems:
    """A run's answer distribution per item (participant or predict_population runs)."""

    keys: list[str]
    dist: np.ndarray  # (items, options), rows sum to 1
    samples: int | None  # None: exact distributions; else samples behind each row
    unparsed: float  # share of samples that did not parse
    path: str  # exact or sampled
    per_item_n: np.ndarray  # parsed samples per item (exact: 1)


@dataclass
class HumanItems:
    """A human dataset's answers to a task's items."""

    dataset: str
    content_sha256: str
    keys: list[str]
    answers: np.ndarray | None  # (participants, items) option indexes, -1 missing
    counts: np.ndarray  # (items, options): counts, or proportions × effective n
    item_n: np.ndarray | None  # effective sample size per item, for item-level data
    people: int


@dataclass
class IndividualPredictions:
    """A ``predict_individual`` run's predictions of the answers people actually gave.

    One row per (person, item) that the person answered: the predicted distribution
    over the item's options, the option chosen, the item's row in the human counts and
    the person. Sampled runs give the share of parsed samples with one added to every
    option (so an option no sample named keeps a finite probability).
    """

    keys: list[str]  # the human counts' item keys, in their order
    item: np.ndarray  # (answers,) row of each answer's item in ``keys``
    person: np.ndarray  # (answers,) transcript id
    predicted: np.ndarray  # (answers, options), rows sum to 1
    answer: np.ndarray  # (answers,) option chosen
    unparsed: float  # share of samples that did not parse
    path: str  # exact or sampled
    names: dict[int, str] = field(default_factory=dict)  # transcript id → participant
