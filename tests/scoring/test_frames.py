"""frames: item-level human data read with its effective sample size."""

import numpy as np
import pytest

from benchmark.models import HumanDataset, ItemDistribution
from benchmark.services.tasks import load_tasks
from scoring import frames
from tests.participants.conftest import CHOICE

pytestmark = pytest.mark.django_db


@pytest.mark.embedded
def test_item_level_rates_carry_their_effective_n(tmp_path):
    path = tmp_path / "choice.yaml"
    path.write_text(CHOICE)
    version = load_tasks([path])[0].version
    dataset = HumanDataset.objects.create(
        slug="rates", name="rates", task=version.task, source="imported", content_sha256="1" * 64
    )
    # c1: 15 people × 5 choices each, a B-rate of 0.4 whose between-person SD gives
    # effective_n 22.5; c2 has no effective_n and falls back to n.
    ItemDistribution.objects.create(
        dataset=dataset,
        item_key="c1",
        n=15,
        proportions={"A": 0.6, "B": 0.4},
        data={"people": 15, "choices_per_person": 5, "effective_n": 22.5},
    )
    ItemDistribution.objects.create(
        dataset=dataset, item_key="c2", n=12, proportions={"A": 0.25, "B": 0.75}
    )
    human = frames.human_items(dataset, frames.item_set(version))
    assert human.keys == ["c1", "c2"] and human.answers is None
    assert human.item_n.tolist() == [22.5, 12.0]
    assert human.counts == pytest.approx(np.array([[13.5, 9.0], [3.0, 9.0]]))
