"""Task spec schema: good files load, bad files are refused naming file, line and field."""

import textwrap

import pytest

from benchmark.services.tasks import discover_task_files, expand_spec
from benchmark.specs import SpecError, load_spec_file, parse_spec, spec_from_json, spec_hash

GOOD = textwrap.dedent(
    """\
    slug: mini-q
    family: test
    kind: questionnaire
    title: Mini questionnaire
    instructions: Rate each statement from 1 to 3.
    prompt:
      trial: '{number}. {text} <<{answer}>>'
    response_scale: {min: 1, max: 3, labels: {1: Low, 3: High}}
    scales:
      X: {name: Extraversion}
    items:
      - {key: q1, text: I talk a lot., scale: X}
      - {key: q2, text: I am quiet., scale: X, reverse: true}
    """
)


def errors_of(text: str, path: str = "t.yaml") -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, path)
    return str(info.value)


def test_good_spec_parses_with_defaults():
    spec = parse_spec(GOOD)
    assert spec.kind == "questionnaire"
    assert [i.key for i in spec.items] == ["q1", "q2"]
    assert spec.items[1].reverse is True
    assert spec.prompt.separator == "\n"
    assert [o.key for o in spec.options_for("q1")] == ["1", "2", "3"]
    assert spec.options_for("q1")[2].label == "High"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            (
                "  - {key: q2, text: I am quiet., scale: X, reverse: true}",
                "  - {key: q2, text: I am quiet., scale: Y, reverse: true}",
            ),
            "t.yaml, line 13, field items[1].scale: 'Y' is not one of the scales ['X']",
        ),
        (
            ("kind: questionnaire", "kind: survey"),
            "t.yaml, line 3, field kind: must be one of "
            "['choice', 'questionnaire', 'sequential', 'transcript']",
        ),
        (
            ("  trial: '{number}. {text} <<{answer}>>'", "  trial: '{number}. {text}'"),
            "t.yaml, line 7, field prompt.trial: must contain <<{answer}>> exactly once",
        ),
        (
            ("response_scale: {min: 1, max: 3", "response_scale: {min: 3, max: 3"),
            "t.yaml, line 8, field response_scale.max: must be greater than min",
        ),
        (
            ("  - {key: q1, text: I talk a lot., scale: X}", "  - {key: q1, scale: X}"),
            "t.yaml, line 12, field items[0].text: Field required",
        ),
        (
            ("title: Mini questionnaire\n", "title: Mini questionnaire\ncolour: blue\n"),
            "t.yaml, line 5, field colour: Extra inputs are not permitted",
        ),
        (
            ("slug: mini-q", "slug: Mini Q"),
            "t.yaml, line 1, field slug: String should match pattern '^[a-z0-9][a-z0-9-]*$'",
        ),
        (
            ("  - {key: q2, text: I am quiet.", "  - {key: q1, text: I am quiet."),
            "t.yaml, line 13, field items[1].key: repeats key 'q1' of items[0]",
        ),
    ],
)
def test_bad_field_names_file_line_and_field(edit, expected):
    old, new = edit
    assert old in GOOD
    assert errors_of(GOOD.replace(old, new)) == expected


def test_missing_top_level_field_points_at_the_document():
    text = GOOD.replace("instructions: Rate each statement from 1 to 3.\n", "")
    assert errors_of(text) == "t.yaml, line 1, field instructions: Field required"


def test_duplicate_yaml_key_is_refused():
    text = GOOD.replace("title: Mini questionnaire\n", "title: Mini questionnaire\ntitle: Again\n")
    assert errors_of(text) == "t.yaml, line 5, field title: key appears twice"


def test_broken_yaml_names_its_line():
    text = GOOD.replace("scales:\n", "scales: [\n")
    assert errors_of(text).startswith("t.yaml, line 11: not valid YAML")


def test_empty_and_non_mapping_files():
    assert errors_of("") == "t.yaml: the file is empty"
    assert errors_of("- a\n- b\n") == "t.yaml, line 1: a task spec must be a mapping of fields"


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(GOOD.replace("I talk a lot.", "J'\xe9coute.").encode("latin-1"))
    with pytest.raises(SpecError, match=r"latin1.yaml: not UTF-8 text"):
        load_spec_file(path)


def test_template_field_missing_is_caught_when_expanding():
    spec = parse_spec(GOOD.replace("'{number}. {text} <<{answer}>>'", "'{colour} <<{answer}>>'"))
    with pytest.raises(SpecError) as info:
        expand_spec(spec, "t.yaml")
    assert "t.yaml, field prompt.trial: prompt.trial uses {colour}" in str(info.value)


def test_hash_ignores_formatting_comments_and_key_order():
    reordered = GOOD.replace("slug: mini-q\nfamily: test\n", "family: test\nslug: mini-q\n")
    commented = "# a comment\n" + GOOD.replace("{min: 1, max: 3,", "{ max: 3,  min: 1,")
    h = spec_hash(parse_spec(GOOD))
    assert spec_hash(parse_spec(reordered)) == h
    assert spec_hash(parse_spec(commented)) == h
    assert spec_hash(parse_spec(GOOD.replace("I talk a lot.", "I talk a lot!"))) != h


def test_hash_is_stable_across_releases():
    # Pinned: if this changes, every stored version would silently get a new identity.
    assert spec_hash(parse_spec(GOOD)) == PINNED_HASH


def test_stored_spec_round_trips_to_the_same_hash():
    spec = parse_spec(GOOD)
    assert spec_hash(spec_from_json(spec.model_dump(mode="json"))) == spec_hash(spec)


@pytest.mark.parametrize("path", discover_task_files(), ids=lambda p: p.stem)
def test_every_bundled_task_file_is_valid(path):
    spec = expand_spec(load_spec_file(path), str(path))
    assert spec.slug == path.stem


PINNED_HASH = "6230ae857e62ab7df5436c066900d4602e2a72f4de31dafc40fb160e5f2dc54c"


def test_yaml_booleans_as_labels_are_refused():
    # YAML reads unquoted No/Yes as booleans: the label must then be quoted.
    text = GOOD.replace("{1: Low, 3: High}", "{1: No, 3: Yes}")
    assert errors_of(text) == (
        "t.yaml, line 8, field response_scale.labels.1: Input should be a valid string\n"
        "t.yaml, line 8, field response_scale.labels.3: Input should be a valid string"
    )
