"""Small task specs and studies for the participant tests."""

import textwrap

import pytest

from benchmark.services.tasks import load_tasks
from participants.models import Study

QUESTIONNAIRE = textwrap.dedent(
    """\
    slug: part-q
    family: test
    kind: questionnaire
    title: Three questions
    instructions: Rate each statement from 1 to 5.
    prompt:
      trial: '{number}. {text} <<{answer}>>'
    response_scale: {min: 1, max: 5, labels: {1: Disagree, 5: Agree}}
    scales:
      X: {name: Extraversion}
    items:
      - {key: q1, text: I talk a lot., scale: X}
      - {key: q2, text: I am quiet., scale: X, reverse: true}
      - {key: q3, text: Choose 4 for this statement., scale: X, attention_check: 4}
    shuffle: true
    """
)

BANDIT = textwrap.dedent(
    """\
    slug: part-bandit
    family: test
    kind: sequential
    title: Six-trial bandit
    instructions: Press F or J to win points.
    prompt:
      trial: "Round {block}.{trial}: you press <<{answer}>> and {outcome}."
    options: [{key: F}, {key: J}]
    environment:
      name: two_armed_bandit
      seed: 11
      params: {arms: [F, J], blocks: [[0.9, 0.1], [0.1, 0.9]], trials_per_block: 3}
    """
)

CHOICE = textwrap.dedent(
    """\
    slug: part-choice
    family: test
    kind: choice
    title: Two gambles
    instructions: Pick the gamble you prefer.
    prompt:
      trial: '{text} You choose <<{answer}>>.'
    options: [{key: A, label: Gamble A}, {key: B, label: Gamble B}]
    items:
      - {key: c1, text: "A: 10 for sure. B: 20 with 50%."}
      - {key: c2, text: "A: 5 for sure. B: 12 with 40%."}
    """
)

CONSENT = (
    "# Study\n\nYou take part **voluntarily**.\n\n- You may stop at any time.\n- <b>No</b> risks."
)


def _version(tmp_path, text, name):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_tasks([path])[0].version


@pytest.fixture
def q_version(db, tmp_path):
    return _version(tmp_path, QUESTIONNAIRE, "q")


@pytest.fixture
def bandit_version(db, tmp_path):
    return _version(tmp_path, BANDIT, "bandit")


@pytest.fixture
def choice_version(db, tmp_path):
    return _version(tmp_path, CHOICE, "choice")


@pytest.fixture
def make_study(db):
    def make(version, **kwargs):
        fields = {
            "task_version": version,
            "title": f"Study of {version.task.slug}",
            "slug": kwargs.pop("slug", f"s-{version.task.slug}"),
            "consent_markdown": CONSENT,
            "completion_code": "DONE123",
            "screenout_code": "SCREEN9",
            "source": "prolific",
            "target_n": 10,
            "seed": 5,
        }
        fields.update(kwargs)
        return Study.objects.create(**fields)

    return make
