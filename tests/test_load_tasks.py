"""load_tasks: versions keyed by spec hash, idempotent loads, bundled human data."""

import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from benchmark.models import HumanDataset, Item, ItemDistribution, Task, TaskVersion, Transcript
from benchmark.services.tasks import load_tasks
from benchmark.specs import SpecError
from tests.test_specs import GOOD

TASKS = Path(__file__).resolve().parent.parent / "benchmark" / "tasks"


@pytest.fixture
def mini(tmp_path):
    path = tmp_path / "test" / "mini-q.yaml"
    path.parent.mkdir()
    path.write_text(GOOD)
    return path


@pytest.mark.django_db
@pytest.mark.embedded
def test_loading_twice_creates_nothing_and_editing_makes_a_new_version(mini):
    (first,) = load_tasks([mini])
    assert first.created and first.version.number == 1
    assert list(first.version.items.values_list("key", "position", "reverse")) == [
        ("q1", 0, False),
        ("q2", 1, True),
    ]
    (again,) = load_tasks([mini])
    assert not again.created and again.version.pk == first.version.pk
    assert TaskVersion.objects.count() == 1 and Item.objects.count() == 2

    mini.write_text(GOOD.replace("I talk a lot.", "I talk a great deal."))
    (edited,) = load_tasks([mini])
    assert edited.created and edited.version.number == 2
    assert edited.version.spec_hash != first.version.spec_hash
    # The old version and its items are untouched: results pointing at them stay valid.
    old = TaskVersion.objects.get(pk=first.version.pk)
    assert old.items.get(key="q1").text == "I talk a lot."
    assert edited.version.items.get(key="q1").text == "I talk a great deal."
    assert Task.objects.get(slug="mini-q").latest_version == edited.version


@pytest.mark.django_db
def test_versions_are_immutable(mini):
    (result,) = load_tasks([mini])
    version = result.version
    version.source_path = "elsewhere"
    with pytest.raises(Exception, match="immutable"):
        version.save()
    with pytest.raises(Exception, match="immutable"):
        version.items.first().save()


@pytest.mark.django_db
def test_one_bad_file_means_nothing_is_loaded(mini, tmp_path):
    bad = tmp_path / "test" / "broken.yaml"
    bad.write_text(
        GOOD.replace("slug: mini-q", "slug: broken").replace("kind: questionnaire", "kind: x")
    )
    with pytest.raises(SpecError) as info:
        load_tasks([mini, bad])
    # The file is named once, and the field is the field (not the file again).
    assert str(info.value).startswith(f"{bad}, line 3, field kind: must be one of")
    assert TaskVersion.objects.count() == 0


@pytest.mark.django_db
def test_command_reports_and_refuses(mini, tmp_path):
    from io import StringIO

    out = StringIO()
    call_command("load_tasks", str(mini), stdout=out)
    assert "mini-q: new version 1" in out.getvalue()
    out = StringIO()
    call_command("load_tasks", str(mini), stdout=out)
    assert "mini-q: unchanged" in out.getvalue()
    assert "1 task file(s), 0 new version(s)" in out.getvalue()
    with pytest.raises(CommandError, match="no such file"):
        call_command("load_tasks", str(tmp_path / "missing.yaml"))
    dup = tmp_path / "test" / "copy.yaml"
    shutil.copy(mini, dup)
    with pytest.raises(CommandError, match=r"slug: used twice: \['mini-q'\]"):
        call_command("load_tasks", str(mini), str(dup))


@pytest.mark.django_db(transaction=True)
@pytest.mark.embedded
def test_bundled_tasks_and_human_data_load_once():
    results = load_tasks()
    slugs = {r.version.task.slug for r in results}
    assert slugs == {
        "ipip-big5-50",
        "choices13k",
        "two-armed-bandit",
        "thoma2025-riskychoice",
        "franke2024-bayesian",
        "ipip-neuroticism",
        "ipip-neo-120-pi-facets",
        "spane",
        "flourishing-scale",
    }
    ipip = HumanDataset.objects.get(slug="ipip-big5-50-openpsychometrics")
    assert ipip.n_participants == 19_719
    first = Transcript.objects.get(dataset=ipip, line=1)
    # Row 1 of data.csv: race 3, age 53, engnat 1, gender 1, hand 1, source 1, US, E1 = 4 …
    assert first.profile == {"age": 53, "gender": "Male"}
    assert first.extra["country"] == "US"
    assert (first.answers["E1"], first.answers["N1"], first.answers["O10"]) == (4, 1, 5)
    assert Item.objects.filter(version__task__slug="ipip-big5-50").count() == 50
    assert Item.objects.filter(version__task__slug="ipip-big5-50", reverse=True).count() == 24

    c13k_items = Item.objects.filter(version__task__slug="choices13k")
    assert 190 <= c13k_items.count() <= 210
    dists = ItemDistribution.objects.filter(dataset__slug="choices13k-no-feedback")
    assert dists.count() == c13k_items.count()
    for d in dists[:20]:
        assert sum(d.proportions.values()) == pytest.approx(1.0)

    assert HumanDataset.objects.get(slug="dezfouli2019").n_participants == 101
    assert HumanDataset.objects.get(slug="thoma2025riskychoice").n_participants == 301
    assert HumanDataset.objects.get(slug="franke2024bayesian").n_participants == 302
    assert Item.objects.filter(version__task__slug="two-armed-bandit").count() == 1296

    counts = (TaskVersion.objects.count(), Transcript.objects.count(), HumanDataset.objects.count())
    again = load_tasks()
    assert not any(r.created or r.datasets_created for r in again)
    assert (
        TaskVersion.objects.count(),
        Transcript.objects.count(),
        HumanDataset.objects.count(),
    ) == counts


@pytest.mark.django_db
def test_command_names_what_each_new_dataset_holds_norms_included():
    # Published norms without a sample size used to crash the command's summary line.
    from io import StringIO

    battery = Path(__file__).resolve().parent.parent / "benchmark" / "tasks" / "battery"
    out = StringIO()
    call_command(
        "load_tasks",
        str(battery / "ipip-neo-120-pi-facets.yaml"),
        str(battery / "spane.yaml"),
        stdout=out,
    )
    text = out.getvalue()
    assert "human data ipip-neo-120-johnson-norms: 24 norm rows" in text, text
    assert ": 2 norm rows" in text, text
