"""A report from task versions (admin action): every finished run, people's answers and
published norms; the norms placement checked by hand, construct names as column labels."""

import csv
import io
import json
import math
import zipfile

import numpy as np
import pytest

from benchmark.models import ModelEndpoint, ModelResponse, Provider, RunMode
from benchmark.norms import NormRow
from benchmark.services.norms import create_norms_dataset
from benchmark.services.runs import cancel_run, queue_run
from benchmark.services.tasks import load_tasks
from scoring.actors import build_report_job
from scoring.models import Report
from scoring.services import ReportError, create_task_report
from tests.scoring.test_reports import KEYS, REVERSE, SPEC, collect
from tests.test_runs import drain

pytestmark = pytest.mark.django_db

# The report questionnaire with a construct on X only: X's column is "extraversion",
# N's keeps its name.
CONSTRUCT_SPEC = SPEC.replace(
    "X: {name: Extraversion}", "X: {name: Extraversion, construct: extraversion}"
)
NORMS = [
    NormRow("N", "adults", "sum", 4.2, 1.0, 100, "Made-up Table 2"),
    NormRow("X", "adults", "mean", 2.0, 0.5, 120, "Made-up Table 1"),
    NormRow("X", "students", "mean", 2.4, 0.4, 60, "Made-up Table 1"),
]


@pytest.fixture
def version(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    path = tmp_path / "rep-q.yaml"
    path.write_text(CONSTRUCT_SPEC)
    return load_tasks([path])[0].version


@pytest.fixture
def finished(version, tiny_llama):
    people, _ = collect(version)
    norms, _ = create_norms_dataset(
        task=version.task, slug="rep-q-norms", name="Made-up norms", rows=NORMS, source="bundled"
    )
    tiny = ModelEndpoint.objects.create(
        name="tiny", provider=Provider.HF, model=str(tiny_llama), revision="r1"
    )
    runs = [
        queue_run(endpoint=tiny, task_version=version),
        queue_run(endpoint=tiny, task_version=version, prompt_variant="human"),
        queue_run(endpoint=tiny, task_version=version, mode=RunMode.PREDICT_POPULATION),
    ]
    for run in runs:
        drain(run)
    cancelled = cancel_run(run=queue_run(endpoint=tiny, task_version=version, seed=9))
    return {"version": version, "people": people, "norms": norms, "runs": runs, "off": cancelled}


def by_hand(run) -> dict[str, float]:
    """Expected keyed answers: X as the mean of x1, x2; N as the sum of n1, n2 (1–3 scale)."""
    rows = {r.item_key: r.distribution for r in ModelResponse.objects.filter(run=run)}
    keyed = {}
    for key in KEYS:
        expected = sum(int(o) * p for o, p in rows[key].items())
        keyed[key] = 4 - expected if REVERSE[key] else expected
    return {"X": (keyed["x1"] + keyed["x2"]) / 2, "N": keyed["n1"] + keyed["n2"]}


def test_admin_builds_a_report_from_the_selected_version(finished, admin_client):
    version, runs = finished["version"], finished["runs"]
    page = admin_client.get("/admin/benchmark/taskversion/").content.decode()
    assert "build_task_report_action" in page
    response = admin_client.post(
        "/admin/benchmark/taskversion/",
        {"action": "build_task_report_action", "_selected_action": [version.pk]},
        follow=True,
    )
    report = Report.objects.get()
    html = response.content.decode()
    assert f"Report {report.pk} queued (3 runs" in html
    assert f"/admin/scoring/report/{report.pk}/change/" in html
    # Every finished run, not the cancelled one; people's answers and the norms.
    assert sorted(report.runs.values_list("pk", flat=True)) == [r.pk for r in runs]
    people, norms = finished["people"].slug, finished["norms"].slug
    assert report.sections == [
        f"first_person:rep-q:{people}",
        f"third_person:rep-q:{people}",
        f"link:rep-q:{people}",
        f"first_person:rep-q:{norms}",
        "pinocchio",
    ]
    assert report.inputs["datasets"] == {
        people: finished["people"].content_sha256,
        norms: finished["norms"].content_sha256,
    }
    build_report_job.fn(report.pk)  # what the worker does with the queued message
    listing = admin_client.get("/admin/scoring/report/").content.decode()
    assert f"report-{report.pk}.zip" in listing and "100%" in listing
    download = admin_client.get(f"/admin/scoring/report/{report.pk}/download/")
    payload = b"".join(download.streaming_content)
    files = zipfile.ZipFile(io.BytesIO(payload))
    summary = json.loads(files.read("summary.json"))

    # Norms placement against a hand computation: z = (score − mean) / SD, 100 · Φ(z).
    placed = summary["sections"][f"first_person__rep-q__{norms}"]
    assert placed["basis"] == "norms"
    rows = placed["scale_placement"]
    assert len(rows) == 2 * len(NORMS)  # both prompt variants × every norm row
    for row in rows:
        run = next(r for r in runs if r.pk == row["run"])
        norm = next(n for n in NORMS if (n.scale, n.group) == (row["scale"], row["group"]))
        score = by_hand(run)[row["scale"]]
        z = (score - norm.mean) / norm.sd
        assert row["statistic"] == norm.statistic and row["source"] == norm.source
        assert row["score"] == pytest.approx(score, abs=1e-6)
        assert row["z"] == pytest.approx(z, abs=1e-6)
        assert row["percentile"] == pytest.approx(50 * (1 + math.erf(z / math.sqrt(2))), abs=1e-5)
        assert row["construct"] == ("extraversion" if row["scale"] == "X" else None)

    # Construct names label the columns where the spec sets them, names elsewhere.
    table = list(
        csv.DictReader(
            io.StringIO(
                files.read(f"csv/first_person__rep-q__{norms}/scale_percentiles.csv").decode()
            )
        )
    )
    assert list(table[0]) == ["run", "model", "group", "Neuroticism", "extraversion"]
    first = next(r for r in rows if r["run"] == runs[0].pk and r["group"] == "adults")
    wide = next(t for t in table if t["run"] == str(runs[0].pk) and t["group"] == "adults")
    assert float(wide[first["construct"] or "Neuroticism"]) == pytest.approx(first["percentile"])
    people_table = files.read(f"csv/first_person__rep-q__{people}/scale_percentiles.csv").decode()
    assert people_table.splitlines()[0] == "run,model,group,Neuroticism,extraversion"
    html = files.read("report.html").decode()
    assert "Scale placement: rep-q against the norms rep-q-norms" in html
    assert "Made-up Table 2" in html and "<th>extraversion</th>" in html
    assert np.isfinite([r["percentile"] for r in rows]).all()


def test_nothing_to_compare_is_a_clear_error_and_stores_nothing(version, admin_client):
    tiny = ModelEndpoint.objects.create(name="tiny", provider=Provider.HF, model="/x", revision="r")
    queued = queue_run(endpoint=tiny, task_version=version)  # queued, never finished
    cancel_run(run=queue_run(endpoint=tiny, task_version=version, seed=1))
    response = admin_client.post(
        "/admin/benchmark/taskversion/",
        {"action": "build_task_report_action", "_selected_action": [version.pk]},
        follow=True,
    )
    assert (
        "No report: nothing to compare: rep-q v1 has no finished participant, "
        "predict_population, predict_individual or likelihood run"
    ) in response.content.decode()
    # A completed run with a response missing is not finished either.
    queued.units.update(state="done")
    type(queued).objects.filter(pk=queued.pk).update(state="completed")
    with pytest.raises(ReportError, match="nothing to compare: rep-q v1 has no finished"):
        create_task_report(versions=[version])
    with pytest.raises(ReportError, match="select at least one task version"):
        create_task_report(versions=[])
    assert not Report.objects.exists()


def test_staff_without_the_report_permission_do_not_get_the_action(
    version, client, django_user_model
):
    staff = django_user_model.objects.create_user("staff", password="x-123456789", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_taskversion"))
    client.force_login(staff)
    page = client.get("/admin/benchmark/taskversion/").content.decode()
    assert "rep-q" in page and "build_task_report_action" not in page
    client.post(
        "/admin/benchmark/taskversion/",
        {"action": "build_task_report_action", "_selected_action": [version.pk]},
    )
    assert not Report.objects.exists()
