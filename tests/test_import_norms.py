"""``manage.py import_norms``: norms of your own for a questionnaire loaded from your file."""

import io

import pytest
from django.core.management import CommandError, call_command

from benchmark.models import DatasetKind, DatasetSource, HumanDataset, ScaleNorm
from tests.test_runs import load
from tests.test_specs import GOOD

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

CSV = (
    "scale,group,statistic,mean,sd,n,source\n"
    "X,all,sum,4.1,1.2,380,Someone et al. (2020) Table 2\n"
    "X,women,sum,4.4,1.1,201,Someone et al. (2020) Table 2\n"
)


def imported(*args) -> str:
    out = io.StringIO()
    call_command("import_norms", *map(str, args), stdout=out)
    return out.getvalue().strip()


def test_norms_of_your_own_are_stored_once_and_read_back(tmp_path):
    load(tmp_path, GOOD, "mini-q")
    path = tmp_path / "my-norms.csv"
    path.write_text(CSV)
    said = imported("mini-q", path, "--licence", "cited with permission")
    assert said == "mini-q-my-norms: 2 norm row(s) for mini-q, imported"
    dataset = HumanDataset.objects.get(slug="mini-q-my-norms")
    assert (dataset.kind, dataset.source, dataset.task.slug) == (
        DatasetKind.NORMS,
        DatasetSource.IMPORTED,
        "mini-q",
    )
    assert (dataset.licence, dataset.file_name, dataset.n_participants) == (
        "cited with permission",
        "my-norms.csv",
        380,  # the largest group
    )
    rows = list(ScaleNorm.objects.filter(dataset=dataset).order_by("group").values_list())
    assert [r[2:] for r in rows] == [
        ("X", "all", "sum", 4.1, 1.2, 380, "Someone et al. (2020) Table 2"),
        ("X", "women", "sum", 4.4, 1.1, 201, "Someone et al. (2020) Table 2"),
    ]
    assert imported("mini-q", path) == "mini-q-my-norms: 2 norm row(s) for mini-q, already there"
    assert ScaleNorm.objects.count() == 2


def test_a_bad_file_names_every_problem_and_writes_nothing(tmp_path):
    load(tmp_path, GOOD, "mini-q")
    path = tmp_path / "bad.csv"
    path.write_text(
        "scale,group,statistic,mean,sd,n,source\n"
        "X,all,sum,4.1,1.2,380,ok\n"
        "Y,all,sum,4.1,1.2,380,ok\n"
        "X,men,sum,4.1,0,1,ok\n"
    )
    with pytest.raises(CommandError) as info:
        imported("mini-q", path)
    assert str(info.value) == (
        "norms not imported:\n"
        f"{path} row 2, scale: 'Y' is not one of ['X']\n"
        f"{path} row 3, sd: must be positive, got 0.0\n"
        f"{path} row 3, n: must be 2 or more (or empty if unpublished), got 1"
    )
    path.write_text("scale,group,statistic,mean,sd,n,source\nX,all,sum,four,1.2,380,ok\n")
    with pytest.raises(CommandError, match=r"line 2, column mean: 'four' is not a number"):
        imported("mini-q", path)
    path.write_bytes(b"scale,group\n\xff\xfe\n")
    with pytest.raises(CommandError, match="cannot read"):
        imported("mini-q", path)
    assert not HumanDataset.objects.exists() and not ScaleNorm.objects.exists()


def test_wrong_task_slug_or_name_is_refused(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text(CSV)
    with pytest.raises(CommandError, match=r"no task 'mini-q': load its YAML file first"):
        imported("mini-q", path)
    load(tmp_path, GOOD, "mini-q")
    with pytest.raises(CommandError, match=r"slug 'a b': use letters, digits"):
        imported("mini-q", path, "--slug", "a b")
    with pytest.raises(CommandError, match=r"name: at most 200 characters"):
        imported("mini-q", path, "--name", "x" * 201)
    with pytest.raises(CommandError, match=r"no such file"):
        imported("mini-q", tmp_path / "missing.csv")
    assert not HumanDataset.objects.exists()
