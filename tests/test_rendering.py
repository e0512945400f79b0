"""The renderer: spec + history → Psych-201 text, checked against hand-written prompts."""

import textwrap
from pathlib import Path

import pytest

from benchmark.rendering import (
    RenderError,
    Turn,
    render_profile,
    render_prompt,
    render_transcript,
    spec_items,
)
from benchmark.specs import load_spec_file, parse_spec
from tests.test_specs import GOOD

TASKS = Path(__file__).resolve().parent.parent / "benchmark" / "tasks"

BANDIT = textwrap.dedent(
    """\
    slug: mini-bandit
    family: test
    kind: sequential
    title: Mini bandit
    instructions: Press F or J.
    prompt:
      trial: "Round {block}.{trial}: you press <<{answer}>> and get {reward} points."
    options: [{key: F}, {key: J}]
    environment:
      name: two_armed_bandit
      seed: 7
      params: {arms: [F, J], blocks: [[1.0, 0.0], [0.0, 1.0]], trials_per_block: 2}
    """
)


def test_questionnaire_prompt_matches_hand_written_text():
    spec = parse_spec(GOOD)
    prompt = render_prompt(spec, [Turn("q1", "3")], "q2")
    assert prompt.text == (
        "Rate each statement from 1 to 3.\n\n1. I talk a lot. <<3>>\n2. I am quiet. <<"
    )
    assert prompt.options == ["1", "2", "3"]
    assert prompt.item_key == "q2"


def test_first_prompt_has_no_history():
    spec = parse_spec(GOOD)
    assert (
        render_prompt(spec, [], "q2").text
        == "Rate each statement from 1 to 3.\n\n1. I am quiet. <<"
    )


def test_transcript_spans_point_inside_the_markers():
    spec = parse_spec(GOOD)
    out = render_transcript(spec, [Turn("q1", "3"), Turn("q2", "1")])
    assert out.text == (
        "Rate each statement from 1 to 3.\n\n1. I talk a lot. <<3>>\n2. I am quiet. <<1>>\n"
    )
    assert out.spans == [(53, 54), (74, 75)]
    assert out.responses == ["3", "1"]
    for start, end in out.spans:
        assert out.text[start - 2 : start] == "<<"
        assert out.text[end : end + 2] == ">>"


def test_prompt_is_a_prefix_of_the_transcript():
    spec = parse_spec(GOOD)
    history = [Turn("q1", "2"), Turn("q2", "3")]
    full = render_transcript(spec, history).text
    assert full.startswith(render_prompt(spec, history[:1], "q2").text)


def test_profile_lines_come_first_in_psych201_style():
    spec = parse_spec(GOOD)
    text = render_prompt(spec, [], "q1", profile={"age": 34, "gender": "female", "x": 1}).text
    assert text.startswith(
        "Interviewer: What is your age?\nInterviewee: 34\n"
        "Interviewer: What is your gender?\nInterviewee: female\n\n"
        "Rate each statement"
    )
    assert render_profile({}) == ""
    assert render_profile({"age": ""}) == ""


def test_sequential_feedback_follows_each_answer():
    spec = parse_spec(BANDIT)
    items = spec_items(spec)
    assert [i.key for i in items] == ["t1", "t2", "t3", "t4"]
    assert items[2].fields == {"block": 2, "trial": 1}
    # Block 1 pays F always, block 2 pays J always (probabilities 1 and 0).
    history = [Turn("t1", "F", {"reward": 1}), Turn("t2", "J", {"reward": 0})]
    assert render_prompt(spec, history, "t3").text == (
        "Press F or J.\n\n"
        "Round 1.1: you press <<F>> and get 1 points.\n"
        "Round 1.2: you press <<J>> and get 0 points.\n"
        "Round 2.1: you press <<"
    )


def test_unknown_item_and_missing_field_are_clear_errors():
    spec = parse_spec(GOOD)
    with pytest.raises(RenderError, match="unknown item 'q9'"):
        render_prompt(spec, [], "q9")
    spec = parse_spec(BANDIT)
    with pytest.raises(RenderError, match=r"uses \{reward\}, which item 't1' does not provide"):
        render_transcript(spec, [Turn("t1", "F")])


def test_bundled_ipip_first_prompt():
    spec = load_spec_file(TASKS / "personality" / "ipip-big5-50.yaml")
    prompt = render_prompt(spec, [], "E1")
    assert prompt.text.endswith('\n\nStatement 1: "I am the life of the party." Your rating: <<')
    assert prompt.options == ["1", "2", "3", "4", "5"]


def test_bundled_bandit_matches_the_human_transcripts_wording():
    spec = load_spec_file(TASKS / "reinforcement-learning" / "two-armed-bandit.yaml")
    items = spec_items(spec)
    assert len(items) == 12 * 108
    from benchmark.rendering import environment_for

    env = environment_for(spec)
    text = render_transcript(spec, [Turn("t1", "R", env.feedback(0, "R"))], items=items[:1]).text
    # Same sentence shape as the Dezfouli et al. Psych-201 transcripts.
    assert text.splitlines()[-1] in {
        "Block 1: You pressed <<R>> and received a food reward.",
        "Block 1: You pressed <<R>> and received no food reward.",
    }
    # The instructions describe this task (fixed presses, text feedback), not the people's
    # timed blocks with a green button, so they differ from the transcripts' first lines.
    assert text.startswith("In this task, you choose again and again between two buttons: L and R.")
    assert "12 blocks of 108 presses" in text and "green" not in text and "40 seconds" not in text
