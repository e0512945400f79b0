"""The Π battery: construct keys in specs (without changing old hashes), norms datasets,
the bundled battery tasks, and a model's scale scores placed against norms and people."""

import math
import textwrap
from pathlib import Path

import pytest

from benchmark import loaders
from benchmark.models import (
    DatasetKind,
    HumanDataset,
    Item,
    ModelEndpoint,
    Provider,
    RunMode,
    RunState,
    ScaleNorm,
    ScoringMode,
    TaskVersion,
)
from benchmark.norms import NormRow, NormsError, read_norms_csv
from benchmark.rendering import render_prompt
from benchmark.services.norms import create_norms_dataset
from benchmark.services.runs import population_prompt, queue_run
from benchmark.services.tasks import TASKS_DIR, discover_task_files, expand_spec, load_tasks
from benchmark.specs import SpecError, load_spec_file, parse_spec, spec_from_json, spec_hash
from scoring.norms import people_item_distributions, scale_positions
from tests.test_runs import drain
from tests.test_specs import GOOD, errors_of

BATTERY = sorted((TASKS_DIR / "battery").glob("*.yaml"))

# The hashes of the bundled files before SubScale had `construct` and `orients_pi` (the
# choices13k and bandit files as corrected in the same release: right gambles, instructions
# that describe the task).
HASHES_BEFORE_CONSTRUCTS = {
    "ipip-big5-50": "87d7ab61025c9ffa300b19d9c035ab924fdde6d70b92ed133a0ac9ff05cd28f7",
    "franke2024-bayesian": "8e2d1e80219801bae01bb65a9d2ca687d166306179085df942c2b0f1b71daa65",
    "two-armed-bandit": "32583786d6328250111c769b30c85018e07676079a1b62fa13774036f2c2b01a",
    "choices13k": "7cbcf15e25fac78539ddd5c6397f1f4815ca572e84355d9f3d241aa26321660b",
    "thoma2025-riskychoice": "d6845c4cf6b6946a9b03915115d590910217b8e62be4326e30c0d8ea73c0e3d3",
}


# --- spec: construct and orients_pi ------------------------------------------------------


@pytest.mark.parametrize("slug", sorted(HASHES_BEFORE_CONSTRUCTS))
def test_new_scale_fields_at_their_defaults_leave_every_old_hash_unchanged(slug):
    (path,) = [p for p in discover_task_files() if p.stem == slug]
    assert spec_hash(expand_spec(load_spec_file(path), str(path))) == HASHES_BEFORE_CONSTRUCTS[slug]


def test_construct_and_orients_pi_are_read_stored_and_hashed():
    marked = GOOD.replace(
        "X: {name: Extraversion}", "X: {name: Extraversion, construct: extraversion}"
    )
    plain, with_construct = parse_spec(GOOD), parse_spec(marked)
    assert with_construct.scales["X"].construct_name == "extraversion"
    assert spec_hash(with_construct) != spec_hash(plain)
    oriented = parse_spec(marked.replace("construct: extraversion", "orients_pi: true"))
    assert spec_hash(oriented) not in {spec_hash(plain), spec_hash(with_construct)}
    # The stored JSON spells both keys out, defaults included, for readers of the spec.
    assert plain.model_dump(mode="json")["scales"]["X"] == {
        "name": "Extraversion",
        "norms": None,
        "construct": None,
        "orients_pi": False,
    }
    assert oriented.model_dump(mode="json")["scales"]["X"]["orients_pi"] is True


def test_bad_constructs_and_two_orienting_scales_are_refused_with_line_and_field():
    assert errors_of(GOOD.replace("{name: Extraversion}", "{name: E, construct: Neuroticism}")) == (
        "t.yaml, line 10, field scales.X.construct: String should match pattern "
        "'^[a-z][a-z0-9' -]*[a-z0-9]$'"
    )
    two = GOOD.replace(
        "  X: {name: Extraversion}",
        "  X: {name: Extraversion, orients_pi: true}\n  Y: {name: Other, orients_pi: true}",
    )
    assert errors_of(two) == (
        "t.yaml, line 11, field scales.Y.orients_pi: only one scale can orient Π; 'X' already does"
    )


# --- norms files ---------------------------------------------------------------------------

HEADER = "scale,group,statistic,mean,sd,n,source\n"


def test_a_norms_file_is_checked_row_by_row(tmp_path):
    path = tmp_path / "norms.csv"
    path.write_text(HEADER + "X,all,mean,2.1,0.6,120,Paper 2020 Table 2\n")
    assert read_norms_csv(path, {"X"}) == [
        NormRow("X", "all", "mean", 2.1, 0.6, 120, "Paper 2020 Table 2")
    ]
    path.write_text(HEADER + "X,all,mean,2.1,zero,120,T\n")
    with pytest.raises(NormsError, match=r"line 2, column sd: 'zero' is not a number"):
        read_norms_csv(path, {"X"})
    path.write_text(HEADER + "Y,all,median,2.1,0,1,\nX,men,mean,2,1,50,T\nX,men,mean,2,1,50,T\n")
    with pytest.raises(NormsError) as info:
        read_norms_csv(path, {"X"})
    assert str(info.value).splitlines() == [
        f"{path} row 1, scale: 'Y' is not one of ['X']",
        f"{path} row 1, statistic: must be one of ['mean', 'sum']",
        f"{path} row 1, sd: must be positive, got 0.0",
        f"{path} row 1, n: must be 2 or more (or empty if unpublished), got 1",
        f"{path} row 1, source: is empty (give the citation and table or page)",
        f"{path} row 3: scale 'X', group 'men' already given in row 2",
    ]
    path.write_text("scale,group,mean\nX,all,2\n")
    with pytest.raises(
        NormsError, match=r"missing column\(s\) \['statistic', 'sd', 'n', 'source'\]"
    ):
        read_norms_csv(path, {"X"})


NORMS_TASK = GOOD + textwrap.dedent(
    """\
    human_data:
      - slug: mini-q-norms
        name: Mini norms
        loader: norms_csv
        file: norms.csv
        licence: CC-BY 4.0
        provenance: Made up for a test
    """
)


@pytest.mark.django_db
@pytest.mark.embedded
def test_a_bundled_norms_file_becomes_a_norms_dataset_once(tmp_path, monkeypatch, admin_client):
    monkeypatch.setattr(loaders, "DATA_DIR", tmp_path)
    (tmp_path / "norms.csv").write_text(
        HEADER + "X,Women,mean,2.2,0.5,80,Paper Table 1\nX,Men,sum,3.9,1.1,70,Paper Table 1\n"
    )
    task = tmp_path / "mini-q.yaml"
    task.write_text(NORMS_TASK)
    (result,) = load_tasks([task])
    (dataset,) = result.datasets_created
    assert (dataset.kind, dataset.source, dataset.n_participants) == ("norms", "bundled", 80)
    assert list(dataset.norms.values_list("scale", "group", "statistic", "mean", "sd", "n")) == [
        ("X", "Men", "sum", 3.9, 1.1, 70),
        ("X", "Women", "mean", 2.2, 0.5, 80),
    ]
    (again,) = load_tasks([task])
    assert again.datasets_created == [] and HumanDataset.objects.count() == 1
    page = admin_client.get(f"/admin/benchmark/humandataset/{dataset.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Paper Table 1" in html and "3.9" in html and "Published norms" in html
    listed = admin_client.get("/api/v1/datasets/?kind=norms").json()["results"]
    assert [(d["slug"], d["kind"]) for d in listed] == [("mini-q-norms", "norms")]
    assert listed[0]["norms"][1] == {
        "scale": "X",
        "group": "Women",
        "statistic": "mean",
        "mean": 2.2,
        "sd": 0.5,
        "n": 80,
        "source": "Paper Table 1",
    }
    assert admin_client.get("/api/v1/datasets/?kind=responses").json()["count"] == 0


@pytest.mark.django_db
def test_bad_norms_stop_the_load_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(loaders, "DATA_DIR", tmp_path)
    (tmp_path / "norms.csv").write_text(HEADER + "Z,all,mean,2,0.5,80,T\n")
    task = tmp_path / "mini-q.yaml"
    task.write_text(NORMS_TASK)
    with pytest.raises(SpecError) as info:
        load_tasks([task])
    assert f"{task}, field human_data[0].file: " in str(info.value)
    assert "scale: 'Z' is not one of ['X']" in str(info.value)
    assert TaskVersion.objects.count() == 0 and HumanDataset.objects.count() == 0


@pytest.mark.django_db
def test_the_database_refuses_a_norm_without_spread(tmp_path):
    version = _load(tmp_path, GOOD)
    dataset, _ = create_norms_dataset(
        task=version.task,
        slug="n",
        name="n",
        rows=[NormRow("X", "all", "mean", 2, 1, 10, "T")],
        source="imported",
    )
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ScaleNorm.objects.create(
            dataset=dataset, scale="X", group="g", statistic="mean", mean=1, sd=0, n=5, source="T"
        )


# --- the bundled battery -----------------------------------------------------------------


def test_the_battery_covers_the_constructs_behind_pi():
    specs = {p.stem: expand_spec(load_spec_file(p), str(p)) for p in BATTERY}
    assert sorted(specs) == [
        "flourishing-scale",
        "ipip-neo-120-pi-facets",
        "ipip-neuroticism",
        "spane",
    ]
    constructs = {
        (slug, s.construct_name) for slug, spec in specs.items() for s in spec.scales.values()
    }
    assert constructs == {
        ("ipip-neuroticism", "neuroticism"),
        ("ipip-neo-120-pi-facets", "neuroticism"),
        ("ipip-neo-120-pi-facets", "imagination"),
        ("ipip-neo-120-pi-facets", "positive emotions"),
        ("spane", "positive affect"),
        ("spane", "negative affect"),
        ("flourishing-scale", "wellbeing"),
    }
    neo = specs["ipip-neo-120-pi-facets"]
    assert [s.orients_pi for s in neo.scales.values()] == [True, False, False]
    by_scale = {k: [i for i in neo.items if i.scale == k] for k in neo.scales}
    assert {k: len(v) for k, v in by_scale.items()} == {"N": 24, "IMAG": 4, "CHEER": 4}
    # IPIP-NEO-120 key (ipip.ori.org): N5 Immoderation has 3 of 4 items reversed, the
    # other neuroticism facets one each; Imagination and Cheerfulness none.
    assert sorted(i.key for i in neo.items if i.reverse) == [
        "N2_4",
        "N3_4",
        "N4_4",
        "N5_2",
        "N5_3",
        "N5_4",
        "N6_4",
    ]
    ipn = specs["ipip-neuroticism"]
    assert sorted(i.key for i in ipn.items if i.reverse) == ["N2", "N4"]


@pytest.fixture
def hf_endpoint(tiny_llama):
    return ModelEndpoint.objects.create(
        name="tiny", provider=Provider.HF, model=str(tiny_llama), revision="r1"
    )


def _load(tmp_path: Path, text: str) -> TaskVersion:
    path = tmp_path / "mini-q.yaml"
    path.write_text(text)
    (result,) = load_tasks([path])
    return result.version


def _hand_score(run, items, low, high, statistic="mean"):
    """The expected keyed answer per item, written out with plain loops."""
    keyed = []
    for item in items:
        dist = run.responses.get(item_key=item.key).distribution
        expected = sum(p * float(k) for k, p in dist.items())
        keyed.append(low + high - expected if item.reverse else expected)
    return sum(keyed) / len(keyed) if statistic == "mean" else sum(keyed)


@pytest.mark.django_db
@pytest.mark.embedded
def test_a_runs_z_scores_against_norms_match_a_hand_computation(hf_endpoint, tmp_path):
    version = _load(tmp_path, GOOD)
    norms, _ = create_norms_dataset(
        task=version.task,
        slug="mini-norms",
        name="Mini norms",
        rows=[
            NormRow("X", "Women", "mean", 2.2, 0.5, 80, "Paper Table 1"),
            NormRow("X", "Men", "sum", 3.9, 1.1, 70, "Paper Table 1"),
        ],
        source="imported",
    )
    run = queue_run(endpoint=hf_endpoint, task_version=version)
    drain(run)
    assert run.state == RunState.COMPLETED
    items = list(Item.objects.filter(version=version).order_by("position"))
    rows = {r.group: r for r in scale_positions(run=run, dataset=norms)}
    women, men = rows["Women"], rows["Men"]
    assert women.score == pytest.approx(_hand_score(run, items, 1, 3), abs=1e-9)
    assert men.score == pytest.approx(_hand_score(run, items, 1, 3, "sum"), abs=1e-9)
    for row, mean, sd in ((women, 2.2, 0.5), (men, 3.9, 1.1)):
        z = (row.score - mean) / sd
        assert row.z == pytest.approx(z, abs=1e-9)
        assert row.percentile == pytest.approx(50 * (1 + math.erf(z / math.sqrt(2))), abs=1e-9)
        assert (row.basis, row.scale, row.name) == ("norms", "X", "Extraversion")


@pytest.mark.django_db
def test_a_run_on_the_battery_neuroticism_scale_is_placed_among_its_people(hf_endpoint):
    (result,) = load_tasks([TASKS_DIR / "battery" / "ipip-neuroticism.yaml"])
    run = queue_run(endpoint=hf_endpoint, task_version=result.version, batch_size=100)
    drain(run)
    assert run.state == RunState.COMPLETED

    # ipip-neuroticism carries its people: the exact empirical percentile among them.
    people = HumanDataset.objects.get(slug="ipip-neuroticism-openpsychometrics")
    assert (people.kind, people.n_participants) == (DatasetKind.RESPONSES, 19_719)
    items = list(run.task_version.items.order_by("position"))
    score = _hand_score(run, items, 1, 5)
    humans = []
    for answers in people.transcripts.values_list("answers", flat=True):
        keyed = [
            6 - answers[i.key] if i.reverse else answers[i.key] for i in items if answers[i.key]
        ]
        if len(keyed) >= 5:  # at least half the items answered
            humans.append(sum(keyed) / len(keyed))
    below = sum(h < score for h in humans) + 0.5 * sum(h == score for h in humans)
    mean = sum(humans) / len(humans)
    sd = math.sqrt(sum((h - mean) ** 2 for h in humans) / (len(humans) - 1))
    (row,) = scale_positions(run=run, dataset=people)
    assert (row.construct, row.orients_pi, row.basis, row.n) == (
        "neuroticism",
        True,
        "people",
        len(humans),
    )
    assert row.score == pytest.approx(score, abs=1e-9)
    assert row.percentile == pytest.approx(100 * below / len(humans), abs=1e-9)
    assert row.z == pytest.approx((score - mean) / sd, abs=1e-9)

    # Third person: the same items asked about the population, compared with these shares.
    shares = people_item_distributions(dataset=people, version=run.task_version)
    n1 = [a["N1"] for a in people.transcripts.values_list("answers", flat=True) if a["N1"]]
    assert shares["N1"] == {str(v): n1.count(v) / len(n1) for v in range(1, 6)}
    # Third-person runs are accepted on these items; their prompt asks about people.
    population = queue_run(
        endpoint=hf_endpoint,
        task_version=run.task_version,
        mode=RunMode.PREDICT_POPULATION,
        samples=3,
    )
    assert population.scoring_mode == "sampled"
    assert sum(u.expected for u in population.units.all()) == 3 * len(shares)
    n1 = render_prompt(spec_from_json(run.task_version.spec), [], "N1").text
    prompt = population_prompt(n1, ["1", "2", "3", "4", "5"])
    assert '"I get stressed out easily."' in prompt
    assert prompt.endswith(
        "estimate how people answer this question. For each option (1, 2, 3, 4, 5) give "
        "the percentage of people who choose it, in the form 1: x%, 2: x%, 3: x%, 4: x%, "
        "5: x%. The percentages must add up to 100.\nAnswer:"
    )


@pytest.mark.slow
@pytest.mark.django_db
def test_smollm2_answers_the_whole_battery_in_exact_mode(smollm2_folder):
    """The bundled SmolLM2-135M-Instruct over every battery task, through work units."""
    endpoint = ModelEndpoint.objects.create(
        name="smollm2",
        provider=Provider.HF,
        model=str(smollm2_folder),
        revision="bundled",
        settings={"device": "cpu", "dtype": "float32", "batch_size": 8},
    )
    results = load_tasks(BATTERY)
    assert sorted(r.version.task.slug for r in results) == sorted(p.stem for p in BATTERY)
    for result in results:
        run = queue_run(endpoint=endpoint, task_version=result.version, batch_size=100)
        drain(run)
        assert run.state == RunState.COMPLETED, run.error
        assert run.responses.count() == result.version.items.count()
        for response in run.responses.all():
            assert sum(response.distribution.values()) == pytest.approx(1.0)
        if result.version.task.slug == "ipip-neuroticism":
            people = HumanDataset.objects.get(slug="ipip-neuroticism-openpsychometrics")
            (row,) = scale_positions(run=run, dataset=people)
            assert 1 <= row.score <= 5 and 0 <= row.percentile <= 100
            # Third person, exact: every item gets a prediction (none unparsed), in percent
            # from 0 to 100 summing to 100, and the report's frame reads them. Two items: each
            # scores 5 × 101 numbers (~10 s on a quiet machine); the runner tests cover the rest.
            from scoring.frames import item_set, model_items

            population = queue_run(
                endpoint=endpoint,
                task_version=result.version,
                mode=RunMode.PREDICT_POPULATION,
                scoring_mode=ScoringMode.EXACT,
                batch_size=100,
                max_items=2,
            )
            drain(population)
            assert population.state == RunState.COMPLETED, population.error
            assert population.responses.count() == 2
            for response in population.responses.all():
                percent = response.details["percent"]
                assert response.details["path"] == "exact" and not response.details["unparsed"]
                assert all(0 <= v <= 100 for v in percent.values())
                assert sum(percent.values()) == pytest.approx(100.0)
                assert sum(response.distribution.values()) == pytest.approx(1.0)
            frame = model_items(population, item_set(result.version))
            assert (len(frame.keys), frame.unparsed, frame.path) == (2, 0.0, "exact")
