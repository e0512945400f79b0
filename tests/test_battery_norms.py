"""The battery's published norms: rows against the source numbers, z-scores of hand-made
answers against a hand computation, and the IPIP-NEO-120 items against Johnson's own form.

The source transcriptions below are written out here on purpose: the tests read the
bundled CSV and YAML files with the csv and yaml modules, not with the task loader, so a
mistake in the loader or in the files cannot hide behind the same assumptions.
"""

import csv
import math

import pytest
import yaml

from benchmark.loaders import DATA_DIR
from benchmark.models import HumanDataset, ModelEndpoint, ModelResponse, Provider, ScaleNorm
from benchmark.norms import NormRow, read_norms_csv
from benchmark.services.runs import queue_run
from benchmark.services.tasks import TASKS_DIR, load_tasks
from scoring.norms import scale_positions

# Johnson's IPIP-NEO-120 scoring program (shortipipneo3.cgi), the norm vector of each sex
# and age group as printed in github.com/kholia/IPIP-NEO-PI @ 0cd4e20, app/evaluator.py
# (the same 8 x 71 numbers are in NeuroQuestAi/five-factor-e @ 618c85f, ipipneo/norm.py).
# Layout (evaluator.py's scoring lines): entries 1-5 domain means N, E, O, A, C; 6-10 their
# SDs; then per domain six facet means and six facet SDs: N 11-22, E 23-34, O 35-46...
JOHNSON_120 = """
Men under 21
0 67.84 80.70 85.98 81.98 79.66 15.83 15.37 12.37 14.66 14.49 11.72
11.93 10.58 12.38 11.67 9.63 3.76 4.41 4.25 3.83 3.25 3.38 13.76
12.23 14.06 11.54 14.67 14.41 3.78 4.17 3.66 3.15 3.38 3.68 16.68
14.51 14.52 12.84 15.47 11.86 2.96 3.87 3.31 3.16 3.50 3.17 13.18
14.85 15.37 12.73 12.01 13.96 3.69 3.44 3.10 4.05 3.94 3.35 15.31
10.97 15.22 13.61 12.35 12.08 2.55 3.93 2.92 3.65 3.24 4.02
Men 21-40
0 66.97 78.90 86.51 84.22 85.50 16.48 15.21 12.65 13.10 14.27 11.44
11.75 10.37 12.11 12.18 9.13 3.76 4.30 4.12 3.81 3.52 3.48 13.31
11.34 14.58 12.07 13.34 14.30 3.80 3.99 3.58 3.23 3.43 3.53 15.94
14.94 14.60 13.14 16.11 11.66 3.18 3.63 3.19 3.39 3.25 3.72 12.81
15.93 15.37 14.58 11.43 13.77 3.69 3.18 2.92 3.70 3.57 3.29 15.80
12.05 15.68 15.36 13.27 13.31 2.44 4.26 2.76 3.39 3.31 4.03
Men 41-60
0 64.11 77.06 83.04 88.33 91.27 16.04 14.31 13.05 11.76 13.35 10.79
11.60 9.78 11.85 11.24 8.81 3.56 4.16 3.94 3.62 3.55 3.35 13.22
10.45 14.95 12.27 11.82 14.32 3.71 3.68 3.44 3.30 3.23 3.29 14.65
14.66 14.76 12.69 15.40 11.04 3.35 3.59 3.02 3.44 3.43 3.93 13.42
16.94 15.65 15.66 11.96 14.21 3.49 2.83 2.88 3.33 3.34 3.17 16.19
13.33 16.56 16.51 14.05 14.60 2.25 4.32 2.50 2.93 3.13 3.78
Men over 60
0 58.42 79.73 79.78 90.20 95.31 15.48 13.63 12.21 11.73 11.99 9.81
11.46 8.18 11.08 9.91 8.24 3.54 4.31 3.59 3.82 3.36 3.28 14.55
11.19 15.29 12.81 11.03 15.02 3.47 3.58 3.10 3.25 2.88 3.16 14.06
14.22 14.34 12.42 14.61 10.11 3.13 3.64 2.90 3.20 3.89 4.02 13.96
17.74 15.76 16.18 11.87 14.00 3.13 2.39 2.74 3.41 3.50 3.11 16.32
14.41 17.54 16.65 14.98 15.18 2.31 4.49 2.30 2.68 2.76 3.61
Women under 21
0 73.41 84.26 89.01 89.14 81.27 15.61 14.98 11.84 13.21 14.38 13.31
13.09 11.05 12.11 12.48 11.30 3.62 4.18 4.20 3.82 3.30 3.47 14.47
13.12 14.03 12.67 14.69 15.34 3.60 4.13 3.68 3.09 3.48 3.42 16.86
15.93 16.02 12.95 15.06 12.17 2.89 3.44 2.95 3.24 3.51 3.02 13.46
16.11 16.66 13.73 13.23 15.70 3.72 2.94 2.69 4.14 3.79 2.84 15.30
11.11 15.62 14.69 12.73 11.82 2.54 4.17 2.76 3.37 3.19 4.01
Women 21-40
0 72.14 80.78 88.25 91.91 87.57 16.16 14.64 12.15 11.39 13.87 13.08
12.72 10.79 12.20 12.71 10.69 3.68 4.13 4.07 3.79 3.58 3.64 14.05
11.92 14.25 12.77 12.84 14.96 3.66 4.05 3.61 3.24 3.53 3.31 15.64
15.97 16.41 12.84 15.28 12.06 3.34 3.30 2.69 3.44 3.47 3.46 13.15
17.34 16.81 15.57 12.98 15.52 3.71 2.61 2.53 3.50 3.57 2.87 16.02
12.67 16.36 16.11 13.56 12.91 2.34 4.51 2.54 3.05 3.23 4.18
Women 41-60
0 67.38 78.62 86.15 95.73 93.45 16.10 14.19 12.62 9.84 12.94 12.05
11.19 10.07 12.07 11.98 10.07 3.72 4.03 3.97 3.73 3.69 3.56 14.10
10.84 14.51 13.03 11.08 15.00 3.72 3.86 3.50 3.46 3.42 3.26 14.43
16.00 16.37 12.58 14.87 11.85 3.49 3.20 2.58 3.45 3.65 3.74 13.79
18.16 17.04 17.02 13.41 15.82 3.52 2.21 2.40 2.88 3.30 2.71 16.50
13.68 17.29 17.16 14.35 14.41 2.16 4.51 2.27 2.73 3.13 3.86
Women over 60
0 63.48 78.22 81.56 97.17 96.44 14.92 12.73 12.66 9.52 12.43 11.39
10.52 9.10 12.00 10.21 9.87 3.61 3.82 3.68 3.61 3.58 3.44 14.85
10.93 14.19 12.76 10.08 15.65 3.43 3.70 3.64 3.26 3.20 3.04 13.15
15.95 15.73 11.80 14.21 10.81 3.71 3.12 2.74 3.26 3.47 3.89 14.19
18.64 17.13 17.98 13.58 15.83 3.39 1.90 2.18 2.56 3.38 2.85 16.50
15.15 18.34 17.19 14.70 15.11 2.24 4.07 1.81 2.49 3.15 3.66
"""


def _johnson_vectors() -> dict[str, list[float]]:
    vectors, name = {}, None
    for line in JOHNSON_120.strip().splitlines():
        if line[0].isalpha():
            name = line
            vectors[name] = []
        else:
            vectors[name] += [float(x) for x in line.split()]
    return vectors


def _csv_rows(name):
    with (DATA_DIR / "battery" / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_ipip_neo_120_norms_are_johnsons_numbers():
    vectors = _johnson_vectors()
    assert len(vectors) == 8 and {len(v) for v in vectors.values()} == {71}
    for v in vectors.values():
        # A domain mean is the sum of its six facet means up to the program's rounding and
        # samples (within 0.4 in every group); a shifted position would be off by points.
        assert sum(v[11:17]) == pytest.approx(v[1], abs=0.4)  # N1-N6
        assert sum(v[23:29]) == pytest.approx(v[2], abs=0.4)  # E1-E6
        assert sum(v[35:41]) == pytest.approx(v[3], abs=0.4)  # O1-O6
    # Imagination is O's first facet (entries 35 / 41), Cheerfulness E's sixth (28 / 34).
    where = {"N": (1, 6), "IMAG": (35, 41), "CHEER": (28, 34)}
    rows = _csv_rows("ipip-neo-120-johnson-norms.csv")
    assert len(rows) == 24
    seen = set()
    for row in rows:
        mean_at, sd_at = where[row["scale"]]
        vector = vectors[row["group"]]
        assert float(row["mean"]) == vector[mean_at]
        assert float(row["sd"]) == vector[sd_at]
        assert (row["statistic"], row["n"]) == ("sum", "")
        assert f"mean = entry {mean_at}, SD = entry {sd_at}" in row["source"]
        seen.add((row["scale"], row["group"]))
    assert len(seen) == 24
    # Spot values read off the source by eye: men 21-40, neuroticism 66.97 +- 16.48;
    # women over 60, imagination 13.15 +- 3.71.
    assert vectors["Men 21-40"][1] == 66.97 and vectors["Men 21-40"][6] == 16.48
    assert vectors["Women over 60"][35] == 13.15 and vectors["Women over 60"][41] == 3.71


def test_the_spane_norms_are_the_quoted_numbers():
    rows = _csv_rows("spane-diener-norms.csv")
    assert [(r["scale"], r["statistic"], r["mean"], r["sd"], r["n"]) for r in rows] == [
        ("P", "sum", "22.02", "3.73", "689"),
        ("NEG", "sum", "15.36", "3.95", "689"),
    ]
    assert all("novopsych.com.au" in r["source"] for r in rows)


# Johnson's short form (shortipipneo.html in kholia/IPIP-NEO-PI @ 0cd4e20): item number,
# text, and whether its "Very Inaccurate" circle is worth 5 (a reverse-keyed item). The
# facet of item q is the ((q - 1) mod 30)-th of the 30 facets N1 E1 O1 A1 C1 N2 E2 ...
JOHNSON_ITEMS = [
    (1, "Worry about things.", False),
    (3, "Have a vivid imagination.", False),
    (6, "Get angry easily.", False),
    (11, "Often feel blue.", False),
    (16, "Find it difficult to approach others.", False),
    (21, "Go on binges.", False),
    (26, "Panic easily.", False),
    (27, "Radiate joy.", False),
    (31, "Fear for the worst.", False),
    (33, "Enjoy wild flights of fantasy.", False),
    (36, "Get irritated easily.", False),
    (41, "Dislike myself.", False),
    (46, "Am afraid to draw attention to myself.", False),
    (51, "Rarely overindulge.", True),
    (56, "Become overwhelmed by events.", False),
    (57, "Have a lot of fun.", False),
    (61, "Am afraid of many things.", False),
    (63, "Love to daydream.", False),
    (66, "Lose my temper.", False),
    (71, "Am often down in the dumps.", False),
    (76, "Only feel comfortable with friends.", False),
    (81, "Easily resist temptations.", True),
    (86, "Feel that I'm unable to deal with things.", False),
    (87, "Love life.", False),
    (91, "Get stressed out easily.", False),
    (93, "Like to get lost in thought.", False),
    (96, "Am not easily annoyed.", True),
    (101, "Feel comfortable with myself.", True),
    (106, "Am not bothered by difficult social situations.", True),
    (111, "Am able to control my cravings.", True),
    (116, "Remain calm under pressure.", True),
    (117, "Look at the bright side of life.", False),
]


def test_the_ipip_neo_items_are_johnsons_short_form_items():
    domains = "NEOAC"
    expected = []
    for number, text, reverse in JOHNSON_ITEMS:
        facet = (number - 1) % 30  # 0-based: domain = facet mod 5, facet number = facet // 5 + 1
        key = f"{domains[facet % 5]}{facet // 5 + 1}_{(number - 1) // 30 + 1}"
        scale = {"N": "N", "O1": "IMAG", "E6": "CHEER"}.get(key[0] if key[0] == "N" else key[:2])
        expected.append({"key": key, "scale": scale, "text": text, "reverse": reverse})
    with (TASKS_DIR / "battery" / "ipip-neo-120-pi-facets.yaml").open(encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    got = [
        {
            "key": i["key"],
            "scale": i["scale"],
            "text": i["text"],
            "reverse": i.get("reverse", False),
        }
        for i in spec["items"]
    ]
    assert got == expected


def test_a_norms_file_may_leave_n_empty_when_the_source_gives_none(tmp_path):
    path = tmp_path / "norms.csv"
    path.write_text("scale,group,statistic,mean,sd,n,source\nX,all,sum,10,2,,Scorer\n")
    assert read_norms_csv(path, {"X"}) == [NormRow("X", "all", "sum", 10.0, 2.0, None, "Scorer")]


@pytest.mark.django_db
@pytest.mark.embedded
def test_the_battery_loads_with_its_norms_datasets():
    results = load_tasks(sorted((TASKS_DIR / "battery").glob("*.yaml")))
    assert {r.version.task.slug for r in results} == {
        "flourishing-scale",
        "ipip-neo-120-pi-facets",
        "ipip-neuroticism",
        "spane",
    }
    norms = {d.slug: d for d in HumanDataset.objects.filter(kind="norms")}
    assert sorted(norms) == ["ipip-neo-120-johnson-norms", "spane-diener-2010-norms"]
    johnson, spane = norms["ipip-neo-120-johnson-norms"], norms["spane-diener-2010-norms"]
    assert johnson.norms.count() == 24 and johnson.n_participants is None
    assert set(johnson.norms.values_list("n", flat=True)) == {None}
    assert spane.n_participants == 689
    assert list(spane.norms.order_by("scale").values_list("scale", "mean", "sd", "n")) == [
        ("NEG", 15.36, 3.95, 689),
        ("P", 22.02, 3.73, 689),
    ]
    # The database takes a missing n but still refuses an n of 1.
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ScaleNorm.objects.create(
            dataset=spane, scale="P", group="g", statistic="sum", mean=1, sd=1, n=1, source="T"
        )


def _hand_made_run(version, distribution):
    """A participant run whose every item has the same answer distribution (no model)."""
    endpoint = ModelEndpoint.objects.create(
        name="hand", provider=Provider.HF, model="hand-made", revision="r1"
    )
    run = queue_run(endpoint=endpoint, task_version=version)
    unit = run.units.first()
    for item in version.items.all():
        ModelResponse.objects.create(
            run=run,
            unit=unit,
            item_key=item.key,
            scoring_mode=run.scoring_mode,
            distribution=distribution,
        )
    return run


def _phi(z):
    return 50 * (1 + math.erf(z / math.sqrt(2)))


@pytest.mark.django_db
@pytest.mark.embedded
def test_hand_made_answers_are_placed_against_johnsons_norms_as_computed_by_hand():
    (result,) = load_tasks([TASKS_DIR / "battery" / "ipip-neo-120-pi-facets.yaml"])
    # Every item: 5 with probability 0.75, 1 with 0.25. Expected answer 4; keyed 4 for the
    # 25 forward items and 6 - 4 = 2 for the 7 reversed ones (all in N). Sums: N = 17 * 4
    # + 7 * 2 = 82, Imagination = Cheerfulness = 4 * 4 = 16.
    run = _hand_made_run(result.version, {"5": 0.75, "1": 0.25})
    dataset = HumanDataset.objects.get(slug="ipip-neo-120-johnson-norms")
    rows = {(r.scale, r.group): r for r in scale_positions(run=run, dataset=dataset)}
    assert len(rows) == 24
    hand = {
        ("N", "Men 21-40"): (82, (82 - 66.97) / 16.48),
        ("N", "Women under 21"): (82, (82 - 73.41) / 15.61),
        ("IMAG", "Women over 60"): (16, (16 - 13.15) / 3.71),
        ("CHEER", "Men 41-60"): (16, (16 - 14.32) / 3.29),
    }
    for key, (score, z) in hand.items():
        row = rows[key]
        assert (row.score, row.statistic, row.n, row.basis) == (
            pytest.approx(score, abs=1e-9),
            "sum",
            None,
            "norms",
        )
        assert row.z == pytest.approx(z, abs=1e-12)
        assert row.percentile == pytest.approx(_phi(z), abs=1e-9)
    assert rows[("N", "Men 21-40")].z == pytest.approx(0.912015, abs=1e-6)
    assert (
        rows[("N", "Men 21-40")].orients_pi and rows[("N", "Men 21-40")].construct == "neuroticism"
    )


@pytest.mark.django_db
def test_hand_made_answers_are_placed_against_the_spane_norms_as_computed_by_hand():
    (result,) = load_tasks([TASKS_DIR / "battery" / "spane.yaml"])
    run = _hand_made_run(result.version, {"4": 1.0})  # "Often" to every feeling: sums 24
    dataset = HumanDataset.objects.get(slug="spane-diener-2010-norms")
    rows = {r.scale: r for r in scale_positions(run=run, dataset=dataset)}
    assert rows["P"].score == pytest.approx(24) and rows["NEG"].score == pytest.approx(24)
    assert rows["P"].z == pytest.approx((24 - 22.02) / 3.73, abs=1e-12)
    assert rows["NEG"].z == pytest.approx((24 - 15.36) / 3.95, abs=1e-12)
    assert rows["NEG"].percentile == pytest.approx(_phi((24 - 15.36) / 3.95), abs=1e-9)
    assert rows["NEG"].n == 689
