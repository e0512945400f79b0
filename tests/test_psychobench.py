"""``import_psychobench``: PsychoBench's questionnaires.json → tasks with norms datasets.

The file is research-use only and not bundled: the tests read the copy in ../shared/data
beside the clone (skipped when absent, a failure under CI=true).
"""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from benchmark.models import (
    DatasetKind,
    HumanDataset,
    Item,
    ModelEndpoint,
    Provider,
    ScaleNorm,
    Task,
    TaskVersion,
)
from benchmark.norms import NormsError
from benchmark.psychobench import parse_questionnaires
from benchmark.services.norms import import_psychobench
from benchmark.services.runs import queue_run
from scoring.norms import scale_positions
from tests.shared_data import shared_file
from tests.test_runs import drain


@pytest.fixture
def psychobench_file() -> Path:
    return shared_file("psychobench", "questionnaires.json")


@pytest.mark.shared_data
def test_every_instrument_with_sub_scales_becomes_a_questionnaire(psychobench_file):
    parsed = parse_questionnaires(psychobench_file.read_text())
    names = [i.name for i in parsed.instruments]
    assert names == [
        "Empathy",
        "BFI",
        "BSRI",
        "EPQ-R",
        "LMS",
        "DTDD",
        "ECR-R",
        "GSE",
        "ICB",
        "LOT-R",
        "EIS",
        "WLEIS",
        "CABIN",
    ]
    assert parsed.skipped == [("16P", "no sub-scales or norms in the file")]
    by_name = {i.name: i for i in parsed.instruments}
    bfi = by_name["BFI"].spec
    assert (bfi.slug, bfi.response_scale.min, bfi.response_scale.max) == ("psychobench-bfi", 1, 5)
    assert len(bfi.items) == 44 and sum(i.reverse for i in bfi.items) == 16
    assert bfi.scales["neuroticism"].construct_name == "neuroticism"
    assert bfi.scales["neuroticism"].orients_pi is True
    # "Is depressed, blue" (item 4) is a forward neuroticism item; "Is relaxed, handles
    # stress well" (item 9) is reverse keyed.
    items = {i.key: i for i in bfi.items}
    assert (items["q4"].scale, items["q4"].reverse) == ("neuroticism", False)
    assert (items["q9"].scale, items["q9"].reverse) == ("neuroticism", True)
    # LOT-R is answered 0–4 and summed; its four filler items are asked but not scored.
    lot = by_name["LOT-R"].spec
    assert (lot.response_scale.min, lot.response_scale.max) == (0, 4)
    assert sorted(i.key for i in lot.items if i.scale == "unscored") == ["q2", "q5", "q6", "q8"]
    assert {r.statistic for r in by_name["LOT-R"].norms} == {"sum"}
    # EPQ-R: yes/no as 1/0; DTDD's third scale is narcissism whatever PsychoBench calls it.
    assert (by_name["EPQ-R"].spec.response_scale.min, by_name["EPQ-R"].spec.response_scale.max) == (
        0,
        1,
    )
    assert by_name["DTDD"].spec.scales["neuroticism"].construct_name == "narcissism"


@pytest.mark.django_db
@pytest.mark.embedded
@pytest.mark.shared_data
def test_import_stores_the_published_norm_rows_exactly_and_only_once(psychobench_file):
    out = StringIO()
    call_command("import_psychobench", str(psychobench_file), stdout=out)
    assert "psychobench-bfi: new version 1, 44 items; norms psychobench-bfi-norms: 5 row(s)" in (
        out.getvalue()
    )
    assert "16P: skipped (no sub-scales or norms in the file)" in out.getvalue()
    assert Task.objects.filter(family="psychobench").count() == 13
    # PsychoBench (Huang et al. 2024), BFI neuroticism, crowd: 3.32 ± 0.82, n = 6,076;
    # EPQ-R neuroticism, men: 10.54 ± 5.81, n = 693 (a sum of 24 yes/no items).
    bfi = ScaleNorm.objects.get(dataset__slug="psychobench-bfi-norms", scale="neuroticism")
    assert (bfi.group, bfi.statistic, bfi.mean, bfi.sd, bfi.n) == (
        "Crowd",
        "mean",
        3.32,
        0.82,
        6076,
    )
    epq = ScaleNorm.objects.get(
        dataset__slug="psychobench-epq-r-norms", scale="neuroticism", group="Male"
    )
    assert (epq.statistic, epq.mean, epq.sd, epq.n) == ("sum", 10.54, 5.81, 693)
    assert "EPQ-R, Neuroticism, Male" in epq.source
    dataset = HumanDataset.objects.get(slug="psychobench-bfi-norms")
    assert (dataset.kind, dataset.source) == (DatasetKind.NORMS, "imported")
    assert "research use only" in dataset.licence
    assert ScaleNorm.objects.count() == 83
    assert Item.objects.filter(version__task__slug="psychobench-cabin").count() == 164

    counts = (TaskVersion.objects.count(), HumanDataset.objects.count(), ScaleNorm.objects.count())
    again = import_psychobench(path=psychobench_file)
    assert not any(created for _, created in again.versions + again.datasets)
    assert (
        TaskVersion.objects.count(),
        HumanDataset.objects.count(),
        ScaleNorm.objects.count(),
    ) == counts


def _broken_copy(source: Path, tmp_path: Path, edit) -> Path:
    data = json.loads(source.read_text())
    edit({q["name"]: q for q in data})
    path = tmp_path / "questionnaires.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.django_db
@pytest.mark.embedded
@pytest.mark.shared_data
def test_a_bad_instrument_stops_the_import_naming_it_and_nothing_is_written(
    psychobench_file, tmp_path
):
    def edit(by_name):
        by_name["BFI"]["categories"][1]["cat_questions"].append(1)  # item 1 also in E
        by_name["GSE"]["scale"] = 6  # 1–4 answers reverse as 5 − x, not 6 − x
        by_name["ICB"]["categories"][0]["crowd"][0]["std"] = 0

    path = _broken_copy(psychobench_file, tmp_path, edit)
    with pytest.raises(CommandError) as info:
        call_command("import_psychobench", str(path))
    assert str(info.value).splitlines() == [
        "invalid PsychoBench file, nothing imported:",
        f"{path}: BFI: item 1 is in both 'extraversion' and 'agreeableness'",
        f"{path}: GSE, scale: 6 is not 1 + 4 (reverse = scale − answer)",
        f"{path}: ICB row 1, sd: must be positive, got 0.0",
    ]
    assert TaskVersion.objects.count() == 0 and HumanDataset.objects.count() == 0


def test_unreadable_files_are_refused_clearly(tmp_path):
    with pytest.raises(NormsError, match="not valid JSON"):
        parse_questionnaires("{", "q.json")
    with pytest.raises(NormsError, match=r"q\.json: Empathy: missing field 'questions'"):
        parse_questionnaires(json.dumps([{"name": "Empathy", "categories": [{}]}]), "q.json")
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_psychobench", str(tmp_path / "nope.json"))


@pytest.mark.django_db
@pytest.mark.shared_data
def test_a_models_lot_r_sum_is_z_scored_against_the_published_norm(psychobench_file, tiny_llama):
    import_psychobench(path=psychobench_file)
    version = TaskVersion.objects.get(task__slug="psychobench-lot-r")
    endpoint = ModelEndpoint.objects.create(
        name="tiny", provider=Provider.HF, model=str(tiny_llama)
    )
    run = queue_run(endpoint=endpoint, task_version=version, batch_size=100)
    drain(run)
    # By hand: LOT-R sums items 1, 3, 4, 7, 9, 10 answered 0–4, items 3, 7 and 9 as 4 − x;
    # items 2, 5, 6 and 8 are fillers. Published norm: 14.7 ± 4 (n = 1,288).
    total = 0.0
    for number in (1, 3, 4, 7, 9, 10):
        dist = run.responses.get(item_key=f"q{number}").distribution
        expected = sum(p * int(k) for k, p in dist.items())
        total += 4 - expected if number in (3, 7, 9) else expected
    norms = HumanDataset.objects.get(slug="psychobench-lot-r-norms")
    (row,) = scale_positions(run=run, dataset=norms)
    assert (row.scale, row.construct, row.statistic, row.n) == ("overall", "optimism", "sum", 1288)
    assert row.score == pytest.approx(total, abs=1e-9)
    assert row.z == pytest.approx((total - 14.7) / 4, abs=1e-9)
    assert run.responses.count() == 10  # the fillers are asked, as in the instrument
