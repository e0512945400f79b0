"""Reports end to end: real runs of two tiny models through the services, human answers
collected through a study; every number of summary.json recomputed here independently."""

import io
import json
import math
import textwrap
import zipfile
from datetime import date

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client
from scipy import stats
from scipy.spatial.distance import jensenshannon

from benchmark.models import ModelEndpoint, ModelResponse, Provider, RunMode, UnitState
from benchmark.services.runs import queue_run
from benchmark.services.tasks import load_tasks
from participants import services as participation
from participants.models import Study
from participants.recruitment import Arrival
from scoring.models import Report, ReportState
from scoring.services import ReportError, build_report, create_report, report_path, report_stale
from scoring.stats.alignment import alignment
from scoring.stats.reference import corrected_alignment, population_reference
from tests.test_runs import drain

pytestmark = pytest.mark.django_db

SPEC = textwrap.dedent(
    """\
    slug: rep-q
    family: test
    kind: questionnaire
    title: Report questionnaire
    instructions: Rate each statement from 1 to 3.
    prompt:
      trial: '{number}. {text} <<{answer}>>'
    response_scale: {min: 1, max: 3, labels: {1: Low, 3: High}}
    scales:
      X: {name: Extraversion}
      N: {name: Neuroticism}
    items:
      - {key: x1, text: I talk a lot., scale: X}
      - {key: x2, text: I am quiet., scale: X, reverse: true}
      - {key: n1, text: I worry about things., scale: N}
      - {key: n2, text: I am calm., scale: N, reverse: true}
    """
)
KEYS = ["x1", "x2", "n1", "n2"]
REVERSE = {"x1": False, "x2": True, "n1": False, "n2": True}
SCALES = {"X": ["x1", "x2"], "N": ["n1", "n2"]}
# Eight people's answers (1–3) to x1, x2, n1, n2.
PEOPLE = [
    (3, 1, 2, 2),
    (2, 2, 1, 3),
    (3, 1, 3, 1),
    (1, 3, 2, 2),
    (2, 1, 1, 3),
    (3, 2, 2, 1),
    (1, 2, 3, 2),
    (2, 3, 1, 2),
]
PARAMS = {"resamples": 200, "seed": 3, "pi_orient": "rep-q:N"}


@pytest.fixture(scope="module")
def second_llama(tmp_path_factory):
    from tests.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-b"), seed=1)


def collect(version):
    study = Study.objects.create(
        task_version=version,
        title="Report study",
        slug="rep-study",
        consent_markdown="Consent.",
        completion_code="DONE",
        source="prolific",
        target_n=20,
        seed=2,
    )
    sessions = []
    for n, answers in enumerate(PEOPLE):
        pid = f"p{n}"
        session, _ = participation.start_session(
            study=study, arrival=Arrival(pid, {"PROLIFIC_PID": pid})
        )
        participation.give_consent(session=session)
        participation.finish_instructions(session=session)
        session.refresh_from_db()
        for key in session.trial_order:
            participation.record_response(
                session=session,
                item_key=key,
                answer=str(answers[KEYS.index(key)]),
                idempotency_key=f"{pid}-{key}",
                rt_ms=1500.0,
            )
        participation.complete_session(session=session)
        sessions.append(session)
    dataset, _ = participation.make_human_dataset(study=study)
    return dataset, sessions


@pytest.fixture
def selection(tmp_path, tiny_llama, second_llama, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    path = tmp_path / "rep-q.yaml"
    path.write_text(SPEC)
    version = load_tasks([path])[0].version
    dataset, sessions = collect(version)
    base = ModelEndpoint.objects.create(
        name="tiny-a",
        provider=Provider.HF,
        model=str(tiny_llama),
        revision="a",
        release_date=date(2024, 1, 1),
    )
    post = ModelEndpoint.objects.create(
        name="tiny-b",
        provider=Provider.HF,
        model=str(second_llama),
        revision="b",
        release_date=date(2025, 7, 1),
        base_model=base,
        post_trained=True,
    )
    runs = []
    for endpoint in (base, post):
        for variant in ("neutral", "human"):
            runs.append(queue_run(endpoint=endpoint, task_version=version, prompt_variant=variant))
        runs.append(
            queue_run(
                endpoint=endpoint, task_version=version, mode=RunMode.LIKELIHOOD, dataset=dataset
            )
        )
    # Third person, exact: tiny-a predicts the population and each person.
    for mode in (RunMode.PREDICT_POPULATION, RunMode.PREDICT_INDIVIDUAL):
        runs.append(
            queue_run(
                endpoint=base,
                task_version=version,
                mode=mode,
                scoring_mode="exact",
                dataset=dataset,
            )
        )
    for run in runs:
        drain(run)
        assert run.state == "completed"
    return {"version": version, "dataset": dataset, "sessions": sessions, "runs": runs}


def human_counts():
    answers = np.array(PEOPLE)
    return np.stack([np.bincount(answers[:, i] - 1, minlength=3) for i in range(4)])


def model_dist(run):
    rows = {r.item_key: r.distribution for r in ModelResponse.objects.filter(run=run)}
    return np.array([[rows[k][o] for o in ("1", "2", "3")] for k in KEYS])


def read(report):
    with zipfile.ZipFile(report_path(report)) as z:
        return {name: z.read(name) for name in z.namelist()}


def scale_score(expected: dict) -> dict:
    keyed = {k: (4 - v if REVERSE[k] else v) for k, v in expected.items()}
    return {s: np.mean([keyed[k] for k in keys]) for s, keys in SCALES.items()}


def check_every_number_of_the_summary(selection):
    runs = selection["runs"]
    report = create_report(runs=runs, params=PARAMS, enqueue=False)
    slug = selection["dataset"].slug
    assert report.sections == [
        f"first_person:rep-q:{slug}",
        f"third_person:rep-q:{slug}",
        f"link:rep-q:{slug}",
        f"individual:rep-q:{slug}",
        "likelihood",
        "pinocchio",
    ]
    report = build_report(report=report)
    assert report.state == ReportState.DONE and report.progress == 1.0
    files = read(report)
    summary = json.loads(files["summary.json"])
    assert summary["schema"] == "geppetto.report/1"
    assert summary["stale"] == []
    counts = human_counts()
    answers = np.array(PEOPLE) - 1
    participant_runs = [r for r in runs if r.mode == RunMode.PARTICIPANT]

    # First person: distances by scipy and by hand, intervals from the statistics called
    # on arrays built here from the raw answers (same seed, same numbers).
    first = summary["sections"][f"first_person__rep-q__{selection['dataset'].slug}"]
    assert first["people"] == 8 and first["metrics"] == ["js", "tv", "w1"]
    by_run = {r["run"]: r for r in first["runs"]}
    for run in participant_runs:
        q = model_dist(run)
        js = np.mean([jensenshannon(c, p, base=2) for c, p in zip(counts, q, strict=True)])
        h = counts / counts.sum(axis=1, keepdims=True)
        tv = np.mean(0.5 * np.abs(h - q).sum(axis=1))
        w1 = np.mean(np.abs(np.cumsum(h - q, axis=1))[:, :2].sum(axis=1) / 2)
        row = by_run[run.pk]
        for metric, value in (("js", js), ("tv", tv), ("w1", w1)):
            got = row[metric]
            assert got["observed"]["value"] == pytest.approx(value, abs=1e-6)
            kw = {"metric": metric, "values": [1.0, 2.0, 3.0], "n_options": 3}
            boot = alignment(answers, q, resamples=200, seed=3, **kw)
            assert (got["observed"]["low"], got["observed"]["high"]) == (
                pytest.approx(boot.low, abs=1e-6),
                pytest.approx(boot.high, abs=1e-6),
            )
            corr = corrected_alignment(answers, q, resamples=200, seed=3, resample_items=True, **kw)
            assert got["corrected"]["value"] == pytest.approx(corr.corrected, abs=1e-6)
            assert got["corrected"]["low"] <= got["corrected"]["value"] <= got["corrected"]["high"]
            ref = population_reference(answers, replicates=200, seed=3, **kw)
            assert got["population_reference"]["value"] == pytest.approx(ref.value, abs=1e-6)
        # Scale placement: expected keyed answers, percentile and z among the 8 people.
        expected = dict(zip(KEYS, q @ np.array([1, 2, 3]), strict=True))
        model_scales = scale_score(expected)
        people = [scale_score(dict(zip(KEYS, p, strict=True))) for p in PEOPLE]
        for place in [p for p in first["scale_placement"] if p["run"] == run.pk]:
            humans = np.array([p[place["scale"]] for p in people])
            score = model_scales[place["scale"]]
            assert place["score"] == pytest.approx(score, abs=1e-6)
            assert place["percentile"] == pytest.approx(
                stats.percentileofscore(humans, score, kind="mean"), abs=1e-4
            )
            assert place["z"] == pytest.approx(
                (score - humans.mean()) / humans.std(ddof=1), abs=1e-6
            )

    # Third person: the exact population prediction against the people's shares.
    population_run = next(r for r in runs if r.mode == RunMode.PREDICT_POPULATION)
    for response in population_run.responses.all():
        percent = response.details["percent"]
        assert response.details["path"] == "exact"
        assert sum(percent.values()) == pytest.approx(100) and min(percent.values()) >= 0
    p = model_dist(population_run)
    h = counts / counts.sum(axis=1, keepdims=True)
    similarity = np.mean([1 - jensenshannon(a, b, base=2) for a, b in zip(p, h, strict=True)])
    (third,) = summary["sections"][f"third_person__rep-q__{slug}"]["runs"]
    assert (third["path"], third["unparsed_share"], third["items"]) == ("exact", 0.0, 4)
    assert third["js_similarity"]["value"] == pytest.approx(similarity, abs=1e-6)
    assert third["opinionqa"]["value"] == pytest.approx(
        1 - np.mean(np.abs(np.cumsum(p - h, axis=1))[:, :2].sum(axis=1) / 2), abs=1e-6
    )
    assert third["item_mean_correlation"] == pytest.approx(
        stats.pearsonr(p @ [1, 2, 3], h @ [1, 2, 3]).statistic, abs=1e-6
    )
    link = summary["sections"][f"link__rep-q__{slug}"]
    assert (link["n"], link["correlation"]) == (1, None)
    assert link["models"] == [
        {
            "model": "tiny-a",
            "first_person": pytest.approx(1 - by_run[runs[0].pk]["js"]["observed"]["value"]),
            "third_person": pytest.approx(similarity, abs=1e-6),
        }
    ]
    # Individuals: log2 p_model(answer) − log2 p_people without the person (one added per
    # option), in bits, averaged over the 8 × 4 answers.
    individual_run = next(r for r in runs if r.mode == RunMode.PREDICT_INDIVIDUAL)
    gains = []
    for response in individual_run.responses.all():
        pid, key = response.item_key.split(":")
        person = selection["dataset"].transcripts.get(pk=int(pid))
        given = int(person.answers[key]) - 1
        others = counts[KEYS.index(key)].astype(float)
        others[given] -= 1
        baseline = (others[given] + 1) / (others.sum() + 3)
        gains.append(math.log2(response.distribution[str(given + 1)] / baseline))
    (ind,) = summary["sections"][f"individual__rep-q__{slug}"]["runs"]
    assert (ind["responses"], ind["people"], ind["path"]) == (32, 8, "exact")
    assert ind["gain_bits"]["value"] == pytest.approx(np.mean(gains), abs=1e-6)
    assert ind["gain_bits"]["low"] <= ind["gain_bits"]["value"] <= ind["gain_bits"]["high"]

    # Likelihood: NLL per participant, pseudo-R² against the uniform chooser over 3 options.
    lik = summary["sections"]["likelihood"]
    likelihood_runs = [r for r in runs if r.mode == RunMode.LIKELIHOOD]
    per_run_ll = {}
    for run in likelihood_runs:
        rows = list(ModelResponse.objects.filter(run=run))
        ll = np.array([sum(r.details["span_logprobs"]) for r in rows])
        spans = np.array([len(r.details["span_logprobs"]) for r in rows])
        per_run_ll[run.pk] = ll
        (row,) = [r for r in lik["runs"] if r["run"] == run.pk]
        assert row["participants"] == 8 and row["responses"] == int(spans.sum()) == 32
        assert row["mean_nll"] == pytest.approx(-ll.mean(), abs=1e-6)
        random_ll = -spans.sum() * math.log(3)
        assert row["pseudo_r2"]["value"] == pytest.approx(1 - ll.sum() / random_ll, abs=1e-6)
        assert row["pseudo_r2"]["low"] <= row["pseudo_r2"]["value"] <= row["pseudo_r2"]["high"]
    (effect,) = lik["effects"]
    assert effect["comparison"] == "post-trained vs base"
    post, base = per_run_ll[likelihood_runs[1].pk], per_run_ll[likelihood_runs[0].pk]
    d = (post.mean() - base.mean()) / math.sqrt((post.var(ddof=1) + base.var(ddof=1)) / 2)
    se = math.sqrt(16 / 64 + d * d / 32)
    assert effect["cohens_d"]["value"] == pytest.approx(d, abs=1e-6)
    assert effect["cohens_d"]["low"] == pytest.approx(d - 1.959964 * se, abs=1e-5)

    # Π: PCA by numpy's eigen-decomposition of the correlation of standardised scale
    # scores; N orients it (pi_orient), so N loads positively.
    pi = summary["sections"]["pinocchio"]
    labels = {"tiny-a": runs[0], "tiny-a [human]": runs[1], "tiny-b": runs[3]}
    labels["tiny-b [human]"] = runs[4]
    order = sorted(labels)
    matrix = np.array(
        [
            [
                scale_score(
                    dict(zip(KEYS, model_dist(labels[m]) @ np.array([1, 2, 3]), strict=True))
                )[s]
                for s in ("N", "X")
            ]
            for m in order
        ]
    )
    z = (matrix - matrix.mean(axis=0)) / matrix.std(axis=0, ddof=1)
    values, vectors = np.linalg.eigh(np.cov(z.T))
    top = vectors[:, -1] * np.sign(vectors[0, -1])
    assert pi["scales"] == ["rep-q:N", "rep-q:X"]
    assert "pi_orient" in pi["orientation"]
    assert [pi["loadings"]["rep-q:N"], pi["loadings"]["rep-q:X"]] == pytest.approx(top, abs=1e-6)
    assert pi["explained_variance"] == pytest.approx(values[-1] / values.sum(), abs=1e-6)
    assert [m["model"] for m in pi["models"]] == order
    assert [m["pi"] for m in pi["models"]] == pytest.approx(z @ top, abs=1e-6)
    for m in pi["models"]:
        assert m["low"] <= m["high"]
    # Rows at the edge of a small selection are named, with a note, not hidden.
    outside = [m["model"] for m in pi["models"] if not m["low"] <= m["pi"] <= m["high"]]
    assert pi["outside_interval"] == outside
    # Item π_i = Var over the two endpoints (neutral) / Var (human prompt) of item means.
    means = {m: model_dist(r) @ np.array([1, 2, 3]) for m, r in labels.items()}
    neutral = np.stack([means["tiny-a"], means["tiny-b"]])
    human = np.stack([means["tiny-a [human]"], means["tiny-b [human]"]])
    expected_pi = neutral.var(axis=0, ddof=1) / human.var(axis=0, ddof=1)
    assert [r["pi_i"] for r in pi["item_pi"]] == pytest.approx(expected_pi, abs=1e-5)
    # Π over release date (four rows, two dates), base vs post-trained pairs.
    years = np.array([date(2024, 1, 1).toordinal(), date(2024, 1, 1).toordinal()] * 1)
    dated = [
        (date.fromisoformat(m["release_date"]).toordinal() / 365.25, m["pi"]) for m in pi["models"]
    ]
    fit = stats.linregress([x for x, _ in dated], [y for _, y in dated])
    assert pi["release_trend_per_year"]["value"] == pytest.approx(fit.slope, abs=1e-6)
    assert len(years) == 2
    by_model = {m["model"]: m["pi"] for m in pi["models"]}
    assert [p["difference"] for p in pi["base_vs_post"]] == pytest.approx(
        [
            by_model["tiny-b"] - by_model["tiny-a"],
            by_model["tiny-b [human]"] - by_model["tiny-a [human]"],
        ],
        abs=1e-6,
    )

    # The bundle: HTML with the plots inline, CSVs, PNGs.
    html = files["report.html"].decode()
    assert "data:image/png;base64," in html and "Population reference" in html
    assert "http://" not in html and "https://" not in html
    names = set(files)
    assert f"csv/first_person__rep-q__{selection['dataset'].slug}/first_person_items.csv" in names
    assert "csv/pinocchio/pinocchio_models.csv" in names
    assert any(n.endswith(".png") and n.startswith("plots/") for n in names)
    assert all(files[n][:8] == b"\x89PNG\r\n\x1a\n" for n in names if n.endswith(".png"))


def check_built_twice_identical_apart_from_the_time(selection):
    report = create_report(runs=selection["runs"], params=PARAMS, enqueue=False)
    first = read(build_report(report=report))
    second = read(build_report(report=report))
    assert sorted(first) == sorted(second)

    def without_time(name, data):
        if name == "summary.json":
            body = json.loads(data)
            body.pop("built_at")
            return body
        if name == "report.html":
            return [line for line in data.decode().splitlines() if ", built " not in line]
        return data

    for name in first:
        assert without_time(name, first[name]) == without_time(name, second[name]), name


def check_a_withdrawal_makes_the_report_stale(selection):
    report = build_report(
        report=create_report(runs=selection["runs"][:2], params=PARAMS, enqueue=False)
    )
    assert report_stale(report) == []
    participation.withdraw(session=selection["sessions"][0])
    assert report_stale(report) == [
        f"dataset {selection['dataset'].slug} changed (e.g. a participant withdrew)"
    ]


def check_bad_selections_are_refused(selection, tmp_path):
    runs = selection["runs"]
    before = Report.objects.count()
    with pytest.raises(ReportError, match="Π needs questionnaire participant runs of at least two"):
        create_report(runs=runs[:1], sections=["pinocchio"], enqueue=False)
    edited = tmp_path / "rep-q.yaml"
    edited.write_text(SPEC.replace("I worry about things.", "I worry a lot."))
    newer = load_tasks([edited])[0].version
    other = queue_run(endpoint=runs[0].endpoint, task_version=newer)
    drain(other)
    with pytest.raises(ReportError, match=r"different task versions of rep-q: version 1: runs "):
        create_report(runs=[runs[0], other], enqueue=False)
    unit = runs[3].units.first()
    unit.state = UnitState.FAILED
    unit.save()
    with pytest.raises(ReportError, match=f"run {runs[3].pk} has 1 failed work unit"):
        create_report(runs=runs[3:4], enqueue=False)
    ModelResponse.objects.filter(run=runs[0], item_key="x1").delete()
    with pytest.raises(ReportError, match=f"run {runs[0].pk} has too few responses: 3 of 4"):
        create_report(runs=runs[:1], enqueue=False)
    from benchmark.models import HumanDataset

    foreign = HumanDataset.objects.create(
        slug="other-data", name="x", task=newer.task, source="imported", content_sha256="0" * 64
    )
    with pytest.raises(ReportError, match="dataset other-data has no items in common"):
        create_report(runs=[runs[1]], datasets=[foreign], enqueue=False)
    assert Report.objects.count() == before


def check_api_admin_and_command(selection, admin_client, capsys):
    runs = selection["runs"]
    body = {"runs": [runs[0].pk, runs[3].pk], "params": PARAMS}
    anonymous = Client().post("/api/v1/reports/", body, content_type="application/json")
    assert anonymous.status_code in (401, 403)
    created = admin_client.post("/api/v1/reports/", body, content_type="application/json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["state"] == "queued" and data["download"] is None
    assert data["sections"] == [f"first_person:rep-q:{selection['dataset'].slug}", "pinocchio"]
    assert admin_client.get(f"/api/v1/reports/{data['id']}/download/").status_code == 409
    from scoring.actors import build_report_job

    build_report_job.fn(data["id"])
    got = admin_client.get(f"/api/v1/reports/{data['id']}/").json()
    assert (got["state"], got["progress"], got["stale"]) == ("done", 1.0, [])
    download = admin_client.get(got["download"])
    assert download.status_code == 200
    payload = b"".join(download.streaming_content)
    assert payload == report_path(Report.objects.get(pk=data["id"])).read_bytes()
    assert "summary.json" in zipfile.ZipFile(io.BytesIO(payload)).namelist()
    bad = admin_client.post(
        "/api/v1/reports/",
        {"runs": [runs[0].pk], "sections": ["pinocchio"]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "Π needs" in bad.json()["detail"]

    # Admin: the runs' action builds a report; the list shows progress, stale and download.
    response = admin_client.post(
        "/admin/benchmark/modelrun/",
        {"action": "build_report_action", "_selected_action": [runs[0].pk, runs[3].pk]},
        follow=True,
    )
    assert "queued" in response.content.decode()
    listing = admin_client.get("/admin/scoring/report/").content.decode()
    assert f"report-{data['id']}.zip" in listing and "100%" in listing
    assert admin_client.get(f"/admin/scoring/report/{data['id']}/download/").status_code == 200

    call_command("report", str(runs[0].pk), "--resamples", "100", "--section", "first_person")
    out = capsys.readouterr()
    assert "100.0% done" in out.err
    report = Report.objects.order_by("-pk").first()
    assert out.out.strip() == f"report {report.pk}: {report_path(report)}"


# The fixture runs eight real runs of two tiny models (about 20 s): two tests share it.


@pytest.mark.embedded
def test_report_numbers_determinism_api_admin_and_command(selection, admin_client, capsys):
    check_every_number_of_the_summary(selection)
    check_built_twice_identical_apart_from_the_time(selection)
    check_api_admin_and_command(selection, admin_client, capsys)


def check_no_secret_in_the_bundle(selection, monkeypatch, settings):
    # A canary in the key variables a worker may read, and the server's own secret key:
    # neither may appear in any file of the ZIP (methods, versions and parameters included).
    from tests.security.conftest import CANARY

    for variable in ("GEPPETTO_KEY_LAB", "OPENAI_API_KEY", "DATABASE_PASSWORD"):
        monkeypatch.setenv(variable, CANARY)
    report = create_report(runs=selection["runs"], params=PARAMS, enqueue=False)
    files = read(build_report(report=report))
    assert files
    for name, data in files.items():
        assert CANARY.encode() not in data, name
        assert settings.SECRET_KEY.encode() not in data, name


def test_withdrawal_makes_stale_and_bad_selections_are_refused(
    selection, tmp_path, monkeypatch, settings
):
    check_no_secret_in_the_bundle(selection, monkeypatch, settings)
    check_a_withdrawal_makes_the_report_stale(selection)
    check_bad_selections_are_refused(selection, tmp_path)
