"""Playwright on Debian's chromium against pytest-django's live server."""

import os
import textwrap
from pathlib import Path

import pytest

from benchmark.services.tasks import load_tasks
from participants.models import Study

# Playwright's sync API keeps an event loop running in the test thread; the ORM calls the
# tests make between page actions are ordinary synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

QUESTIONNAIRE = textwrap.dedent(
    """\
    slug: web-q
    family: test
    kind: questionnaire
    title: Six statements
    instructions: Rate each statement from 1 (disagree) to 5 (agree).
    prompt:
      trial: '{number}. {text} <<{answer}>>'
    response_scale: {min: 1, max: 5, labels: {1: Disagree, 5: Agree}}
    scales:
      X: {name: Extraversion}
    items:
    """
) + "".join(f"  - {{key: q{i}, text: Statement number {i}., scale: X}}\n" for i in range(1, 7))

BANDIT = textwrap.dedent(
    """\
    slug: web-bandit
    family: test
    kind: sequential
    title: Two slot machines
    instructions: Press F or J. One machine pays more often.
    prompt:
      trial: "Round {block}.{trial}: you press <<{answer}>> and {outcome}."
    options: [{key: F, label: Left machine}, {key: J, label: Right machine}]
    environment:
      name: two_armed_bandit
      seed: 3
      params: {arms: [F, J], blocks: [[0.9, 0.1], [0.1, 0.9]], trials_per_block: 3}
    """
)

CHOICE = textwrap.dedent(
    """\
    slug: web-choice
    family: test
    kind: choice
    title: Gambles
    instructions: Pick the gamble you prefer.
    prompt:
      trial: '{text} You choose <<{answer}>>.'
    options: [{key: A, label: Gamble A}, {key: B, label: Gamble B}]
    items:
      - {key: c1, text: "A: 10 points for sure. B: 20 points with probability 50%."}
      - {key: c2, text: "A: 5 points for sure. B: 12 points with probability 40%."}
      - {key: c3, text: "A: 0 points for sure. B: 3 points with probability 10%."}
    """
)


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(chromium):
    ctx = chromium.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(15000)
    yield ctx
    ctx.close()


@pytest.fixture
def shot():
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name):
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def make_web_study(tmp_path):
    def make(spec_text, name, **kwargs):
        path = tmp_path / f"{name}.yaml"
        path.write_text(spec_text)
        version = load_tasks([path])[0].version
        fields = {
            "task_version": version,
            "title": version.spec["title"],
            "slug": name,
            "consent_markdown": "You take part **voluntarily**.\n\n- You may withdraw at any time.",
            "completion_code": "CODE42",
            "source": "open",
            "target_n": 10,
        }
        fields.update(kwargs)
        return Study.objects.create(**fields)

    return make
