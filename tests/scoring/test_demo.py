"""`manage.py demo` on a tiny model in embedded mode: real queue, real report, printed lines.

The demo's runs go through the in-process worker that `manage.py serve` starts, on the
bundled tasks and their shipped human data, cut to a few items and transcripts so that
the test stays short; the printed numbers are checked against summary.json and against
an independent computation from the stored responses.
"""

import io
import json
import re
import zipfile
from collections import Counter

import dramatiq
import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy.spatial.distance import jensenshannon

from benchmark.models import (
    HumanDataset,
    ModelEndpoint,
    ModelResponse,
    ModelRun,
    Provider,
    RunMode,
    RunState,
)
from benchmark.services.tasks import load_tasks
from scoring.models import Report, ReportState
from scoring.services import report_path
from tests.test_load_tasks import TASKS

DEMO_TASKS = [
    TASKS / "personality" / "ipip-big5-50.yaml",
    TASKS / "risky-choice" / "choices13k.yaml",
    TASKS / "risky-choice" / "thoma2025-riskychoice.yaml",
]


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_demo_queues_through_the_embedded_worker_and_prints_the_report(
    tiny_llama, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    dramatiq.get_broker().flush_all()  # no message of another test is left in memory
    load_tasks(DEMO_TASKS)
    ModelEndpoint.objects.create(
        name="tiny", provider=Provider.HF, model=str(tiny_llama), revision="r1"
    )
    out = io.StringIO()
    call_command(
        "demo",
        "--endpoint",
        "tiny",
        "--items",
        "3",
        "--participants",
        "4",
        "--resamples",
        "50",
        "--every",
        "0.5",
        "--timeout",
        "120",
        stdout=out,
    )
    text = out.getvalue()
    assert "Embedded mode: in-process worker with 1 thread(s)." in text
    runs = list(ModelRun.objects.order_by("pk"))
    assert [(r.task_version.task.slug, r.mode, r.prompt_variant, r.scoring_mode) for r in runs] == [
        ("ipip-big5-50", RunMode.PARTICIPANT, "neutral", "exact"),
        ("ipip-big5-50", RunMode.PARTICIPANT, "human", "exact"),
        ("ipip-big5-50", RunMode.PREDICT_POPULATION, "neutral", "exact"),
        ("choices13k", RunMode.PARTICIPANT, "neutral", "exact"),
        ("thoma2025-riskychoice", RunMode.LIKELIHOOD, "neutral", "exact"),
    ]
    assert all(r.state == RunState.COMPLETED for r in runs)
    # The first three items of each task, four transcripts: one response each.
    assert [r.responses.count() for r in runs] == [3, 3, 3, 3, 4]
    assert set(runs[0].responses.values_list("item_key", flat=True)) == {"E1", "A1", "N1"}
    assert re.search(r"\[\s*\d+ s\] run \d+ \d+/3, run \d+ \d+/3", text)  # progress lines

    report = Report.objects.get()
    assert report.state == ReportState.DONE
    assert set(report.runs.all()) == set(runs)
    ipip = "ipip-big5-50__ipip-big5-50-openpsychometrics"
    with zipfile.ZipFile(report_path(report)) as z:
        summary = json.loads(z.read("summary.json"))
    assert sorted(summary["sections"]) == sorted(
        [
            f"first_person__{ipip}",
            f"third_person__{ipip}",
            f"link__{ipip}",
            "first_person__choices13k__choices13k-no-feedback",
            "likelihood",
            "pinocchio",
        ]
    )
    assert f"Report {report.pk}: {report_path(report)}" in text
    lines = text.split(f"Report {report.pk}: {report_path(report)}\n")[1].splitlines()
    alignment, percentiles, third = (line.strip() for line in lines[:3])

    # Line 1: each run's corrected JS distance with its interval, and the reference.
    first = summary["sections"][f"first_person__{ipip}"]
    assert first["people"] == 19719
    for row in first["runs"]:
        js = row["js"]["corrected"]
        assert f"{row['model']} {js['value']:.3f} [{js['low']:.3f}, {js['high']:.3f}]" in alignment
    ref = first["runs"][0]["js"]["population_reference"]
    assert f"population reference {ref['value']:.4f}" in alignment
    # Line 2: the percentile of every scale the three items touch, per prompt variant.
    assert percentiles.startswith("Scale percentiles among the respondents: ")
    for p in first["scale_placement"]:
        assert f"{p['scale_name']} {p['percentile']:.1f}" in percentiles
    assert {p["scale"] for p in first["scale_placement"]} == {"E", "A", "N"}

    # Line 3: 1 − JS of the exact population prediction, recomputed from the responses.
    human = HumanDataset.objects.get(slug="ipip-big5-50-openpsychometrics")
    answers = [a for a in human.transcripts.values_list("answers", flat=True) if a]
    similarity = []
    for response in ModelResponse.objects.filter(run=runs[2]).order_by("item_key"):
        given = Counter(str(a.get(response.item_key)) for a in answers)
        people = np.array([given[o] for o in "12345"])
        predicted = np.array([response.distribution[o] for o in "12345"])
        similarity.append(1 - jensenshannon(predicted, people / people.sum(), base=2))
    assert third.startswith("Third-person accuracy: tiny (exact, 3 items) 1 − JS ")
    assert f"1 − JS {np.mean(similarity):.3f} [" in third
    assert third.endswith("0% unparsed")


@pytest.mark.django_db
def test_demo_errors_are_clear_and_queue_nothing():
    with pytest.raises(CommandError, match=r"unknown model.*'llama9'.*smollm2, gemma3"):
        call_command("demo", "--models", "smollm2,llama9")
    with pytest.raises(CommandError, match="no endpoint named 'nope'"):
        call_command("demo", "--endpoint", "nope")
    with pytest.raises(CommandError, match="--items must be at least 1"):
        call_command("demo", "--endpoint", "nope", "--items", "0")
    ModelEndpoint.objects.create(name="tiny", provider=Provider.HF, model="/none", revision="r")
    with pytest.raises(CommandError, match=r"task 'ipip-big5-50' is not loaded: run `manage\.py"):
        call_command("demo", "--endpoint", "tiny")
    assert not ModelRun.objects.exists() and not Report.objects.exists()
