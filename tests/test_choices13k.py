"""choices13k items and human data checked against the raw selections file.

The checks read c13k_selections.csv with their own code (pandas, row lookups by problem
number among the no-feedback rows) and compare it with what a participant or a model is
shown: the numbers in each item's text. They share nothing with the loader's pairing.
"""

import gzip
import json
import re
import shutil

import pandas as pd
import pytest

from benchmark import loaders
from benchmark.models import HumanDataset, ItemDistribution, Supersession, TaskVersion
from benchmark.services import tasks as task_services
from benchmark.services.tasks import load_tasks, supersede_version

DATA = loaders.DATA_DIR / "choices13k"
TASKS = loaders.DATA_DIR.parent / "tasks"


@pytest.fixture(scope="module")
def no_feedback():
    raw = pd.read_csv(DATA / "c13k_selections.csv.gz")
    rows = raw[raw["Feedback"] == False]  # noqa: E712 (the column holds booleans)
    assert rows["Problem"].is_unique
    return rows.set_index("Problem")


def shown(text: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(probability, payoff) pairs of gambles A and B, read back from an item's text."""
    a_text, b_text = re.fullmatch(r"Gamble A: (.*)\.\nGamble B: (.*)\.", text).groups()

    def pairs(words):
        if m := re.fullmatch(r"(-?[\d.]+) points for sure", words):
            return [(1.0, float(m[1]))]
        if m := re.fullmatch(r"one of (.*) points, with unknown probabilities", words):
            return [(None, float(x)) for x in m[1].split(", ")]
        found = re.findall(r"(-?[\d.]+) points with probability ([\d.]+)%", words)
        assert found, words
        return [(float(p) / 100, float(x)) for x, p in found]

    return pairs(a_text), pairs(b_text)


def check_against_row(item: dict, row) -> None:
    a, b = shown(item["text"])
    ha, pha, la = row["Ha"], row["pHa"], row["La"]
    expected_a = dict.fromkeys((ha, la), 0.0)
    expected_a[ha] += pha
    expected_a[la] += 1 - pha
    shown_a: dict = {}
    for p, x in a:
        shown_a[x] = shown_a.get(x, 0) + p
    assert {x: round(p, 4) for x, p in shown_a.items()} == {
        x: round(p, 4) for x, p in expected_a.items() if p > 0
    }, item["key"]
    hb, phb, lb = row["Hb"], row["pHb"], row["Lb"]
    if b[0][0] is None:  # ambiguous: payoffs only
        payoffs = {x for _, x in b}
        assert lb in payoffs or phb == 1, item["key"]
        if row["LotNumB"] == 1:
            assert hb in payoffs or phb == 0, item["key"]
        return
    # The text rounds probabilities to 0.01 %, so expected values agree to that precision.
    ev = sum(p * x for p, x in b)
    scale = sum(abs(x) for _, x in b) + 1
    assert ev == pytest.approx(phb * hb + (1 - phb) * lb, abs=1e-4 * scale), item["key"]
    if phb < 1:
        assert {x: p for p, x in b}.get(lb, 0) >= round(1 - phb, 4) - 1e-9, item["key"]


@pytest.mark.parametrize(("subset", "expected"), [(200, 205), (None, 2380)])
def test_every_item_shows_the_gambles_of_its_own_problem(no_feedback, subset, expected):
    items = loaders.choices13k_items("choices13k/c13k_problems.json.gz", subset, 0)
    assert len(items) == expected
    for item in items:
        check_against_row(item, no_feedback.loc[item["data"]["problem"]])


def test_the_first_no_feedback_problem_reads_as_in_the_file():
    items = loaders.choices13k_items("choices13k/c13k_problems.json.gz", None, 0)
    # File row 4 (0-based), problem 5, read by hand: A = 26 for sure; B = −36 with 0.25,
    # else a 5-outcome lottery with expected value 45 (LotShapeB 2, right-skewed).
    assert items[0]["key"] == "p5" and items[0]["data"]["selections_row"] == 4
    assert items[0]["text"] == (
        "Gamble A: 26 points for sure.\n"
        "Gamble B: -36 points with probability 25%, 41 points with probability 37.5%, "
        "43 points with probability 18.75%, 47 points with probability 9.38%, "
        "55 points with probability 4.69%, 71 points with probability 4.69%."
    )


def test_a_problems_file_keyed_by_problem_number_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "choices13k"
    folder.mkdir()
    shutil.copy(DATA / "c13k_selections.csv.gz", folder)
    problems = json.loads(gzip.decompress((DATA / "c13k_problems.json.gz").read_bytes()))
    raw = pd.read_csv(DATA / "c13k_selections.csv.gz")
    # The old reading: entry Problem − 1 for each row.
    shifted = {str(i): problems[str(int(p) - 1)] for i, p in enumerate(raw["Problem"])}
    (folder / "c13k_problems.json.gz").write_bytes(gzip.compress(json.dumps(shifted).encode()))
    monkeypatch.setattr(loaders, "DATA_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"2,378 problems disagree with c13k_selections\.csv"):
        loaders.choices13k_items("choices13k/c13k_problems.json.gz", 200, 0)


def test_check_gambles_names_each_disagreement():
    row = {"Ha": "26", "pHa": "0.95", "La": "-1", "Hb": "23", "pHb": "0.05", "Lb": "21"}
    row |= {"LotNumB": "1"}
    good = {"A": [[0.95, 26.0], [0.05, -1.0]], "B": [[0.95, 21.0], [0.05, 23.0]]}
    assert loaders.check_gambles(row, good) == []
    bad = {"A": [[0.95, 27.0], [0.05, -1.0]], "B": [[0.9, 21.0], [0.1, 23.0]]}
    problems = loaders.check_gambles(row, bad)
    assert any("A pays" in p for p in problems)
    assert any("B's expected value" in p for p in problems)
    assert any("B pays Lb 21" in p for p in problems)


def test_human_data_records_what_was_sampled(no_feedback):
    keys = {f"p{p}" for p in no_feedback.index}
    counts = loaders.choices13k_distributions(DATA / "c13k_selections.csv.gz", keys)
    assert len(counts) == 2380
    for c in counts[:50]:
        row = no_feedback.loc[int(c.item_key[1:])]
        b, n, sd = row["bRate"], row["n"], row["bRate_std"]
        assert c.n == n == c.data["people"]
        assert c.data["choices_per_person"] == 5 and c.data["choices"] == 5 * n
        assert c.proportions["B"] == pytest.approx(b)
        # n·b(1−b)/sd², clipped to [n, 5n]: the binomial size with the B-rate's variance.
        expected = min(5 * n, max(n, n * b * (1 - b) / sd**2)) if sd > 0 else None
        if expected is not None:
            assert c.data["effective_n"] == pytest.approx(expected, abs=1e-3)
    # A hand-worked row: 15 people, B-rate 0.6, SD 0.4 → 15 · 0.24 / 0.16 = 22.5 choices.
    assert loaders.effective_choices(15, 0.6, 0.4) == pytest.approx(22.5)
    assert loaders.effective_choices(15, 0.6, 0.01) == 75  # at most 5 per person
    assert loaders.effective_choices(15, 0.0, 0.0) == 15


def choices13k_files(tmp_path):
    folder = tmp_path / "risky-choice"
    folder.mkdir()
    shutil.copy(TASKS / "risky-choice" / "choices13k.yaml", folder)
    return [folder / "choices13k.yaml"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.embedded
def test_loaded_dataset_says_people_are_unknown_and_old_rows_are_replaced(tmp_path):
    files = choices13k_files(tmp_path)
    load_tasks(files)
    dataset = HumanDataset.objects.get(slug="choices13k-no-feedback")
    assert dataset.n_participants is None
    first = ItemDistribution.objects.filter(dataset=dataset).first()
    assert first.data["effective_n"] >= first.n and first.data["choices_per_person"] == 5
    # A database loaded by the older loader: same slug, another digest, rows without the
    # sampling unit. Loading again replaces the rows and the digest, keeping the dataset.
    HumanDataset.objects.filter(pk=dataset.pk).update(content_sha256="0" * 64)
    ItemDistribution.objects.filter(dataset=dataset).update(data={})
    load_tasks(files)
    dataset.refresh_from_db()
    assert dataset.content_sha256 != "0" * 64
    assert HumanDataset.objects.filter(slug="choices13k-no-feedback").count() == 1
    assert not ItemDistribution.objects.filter(dataset=dataset, data={}).exists()
    assert "Rows replaced" in dataset.provenance


@pytest.mark.django_db(transaction=True)
@pytest.mark.embedded
def test_known_wrong_versions_are_marked_superseded(tmp_path, monkeypatch):
    files = choices13k_files(tmp_path)
    files[0].write_text(files[0].read_text().replace("205-problem", "old"))
    (old,) = load_tasks(files)
    shutil.copy(TASKS / "risky-choice" / "choices13k.yaml", files[0])
    monkeypatch.setitem(task_services.KNOWN_SUPERSEDED, old.version.spec_hash, "wrong gambles")
    (new,) = load_tasks(files)
    note = Supersession.objects.get(version=old.version)
    assert note.reason == "wrong gambles" and note.superseded_by == new.version
    assert not Supersession.objects.filter(version=new.version).exists()
    load_tasks(files)  # once only
    assert Supersession.objects.count() == 1
    with pytest.raises(ValueError, match="say why"):
        supersede_version(version=new.version, reason="  ")
    with pytest.raises(ValueError, match="same task"):
        supersede_version(version=new.version, reason="x", by=new.version)
    assert TaskVersion.objects.filter(task__slug="choices13k").count() == 2


@pytest.mark.django_db
def test_admin_marks_a_version_superseded_and_the_api_says_so(admin_client, tmp_path):
    (result,) = load_tasks(choices13k_files(tmp_path))
    version = result.version
    url = f"/admin/benchmark/taskversion/{version.pk}/supersede/"
    page = admin_client.post(url, {"reason": "   "})
    assert page.status_code == 200 and "This field is required" in page.content.decode()
    assert not Supersession.objects.exists()
    page = admin_client.post(url, {"reason": "items were wrong"})
    assert page.status_code == 302
    listing = admin_client.get("/admin/benchmark/taskversion/?superseded=yes").content.decode()
    assert "items were wrong" in listing
    api = admin_client.get(f"/api/v1/versions/{version.pk}/").json()
    assert api["superseded"] == {"reason": "items were wrong", "by": None}
    dataset = admin_client.get("/api/v1/datasets/?task=choices13k").json()["results"][0]
    assert dataset["n_participants"] is None


@pytest.mark.django_db
def test_staff_without_the_permission_cannot_supersede(client, django_user_model, tmp_path):
    (result,) = load_tasks(choices13k_files(tmp_path))
    staff = django_user_model.objects.create_user("staff", password="x-123456789", is_staff=True)
    client.force_login(staff)
    page = client.post(
        f"/admin/benchmark/taskversion/{result.version.pk}/supersede/", {"reason": "no"}
    )
    assert page.status_code == 403 and not Supersession.objects.exists()
