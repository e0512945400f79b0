"""Item 4: no task YAML takes the machine down; hostile files get the usual spec error."""

import signal
import textwrap

import pytest

from benchmark.specs import MAX_ALIASES, SpecError, parse_spec
from tests.participants.conftest import CHOICE
from tests.test_specs import GOOD

# 831 bytes of aliases that expand to 10^9 strings.
BILLION_LAUGHS = textwrap.dedent(
    """\
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
    """
)


@pytest.fixture
def deadline():
    """Fail (instead of hanging for minutes, as the old code did) after 30 s."""

    def expire(*_):
        raise TimeoutError("the spec took more than 30 s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def refused(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "evil.yaml")
    return str(info.value)


def test_billion_laughs_is_refused_by_its_expansion(deadline):
    assert refused(BILLION_LAUGHS) == (
        "evil.yaml, line 7: expands to more than 1,000,000 values (aliases)"
    )


def test_many_aliases_are_refused_before_they_are_expanded(deadline):
    text = "a: &a x\nb: [" + ",".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    assert refused(text) == f"evil.yaml, line 2: more than {MAX_ALIASES} aliases (*name)"


def test_a_self_referencing_alias_is_refused(deadline):
    assert "refers to the node that contains it" in refused("a: &a [1, *a]\n")


def test_deep_nesting_is_refused(deadline):
    assert refused("a: " + "[" * 5000 + "]" * 5000 + "\n") == "evil.yaml: nested too deeply"


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch /tmp/pwned']",
        "!!python/name:os.system",
        "!!python/tuple [1, 2]",
    ],
)
def test_python_tags_give_the_usual_spec_error(tag, tmp_path):
    message = refused(f"slug: x\nfamily: test\ntitle: {tag}\n")
    assert message.startswith("evil.yaml, line 3: the tag !!python/")
    assert "is not allowed" in message
    assert not (tmp_path / "pwned").exists()


def test_an_unknown_local_tag_gives_the_usual_spec_error():
    assert refused("slug: !weird x\n").startswith("evil.yaml, line 1: not valid YAML:")


def test_a_huge_response_scale_is_refused_before_options_are_built(deadline):
    text = GOOD.replace("max: 3,", "max: 100000000,")
    assert refused(text) == (
        "evil.yaml, line 8, field response_scale.max: a scale has at most 101 points; "
        "1..100000000 has 100,000,000"
    )


def test_too_many_items_or_options_are_refused(monkeypatch):
    monkeypatch.setattr("benchmark.specs.MAX_ITEMS", 2)
    assert len(parse_spec(GOOD).items) == 2  # at the limit: fine
    items = "".join(f"  - {{key: q{n}, text: t, scale: X}}\n" for n in range(3))
    text = GOOD.split("items:\n")[0] + "items:\n" + items
    assert refused(text) == "evil.yaml, line 12, field items: at most 2 items; the file has 3"
    options = ", ".join(f"{{key: o{n}}}" for n in range(101))
    choice = CHOICE.replace(
        "options: [{key: A, label: Gamble A}, {key: B, label: Gamble B}]", f"options: [{options}]"
    )
    assert "field options: List should have at most 100 items" in refused(choice)


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path):
    from benchmark.specs import MAX_SPEC_BYTES, load_spec_file

    path = tmp_path / "big.yaml"
    path.write_text(GOOD + "#" * MAX_SPEC_BYTES)
    with pytest.raises(SpecError, match="bytes; at most"):
        load_spec_file(path)


def test_load_tasks_reports_the_usual_message(tmp_path):
    from django.core.management import CommandError, call_command

    path = tmp_path / "laughs.yaml"
    path.write_text(BILLION_LAUGHS)
    with pytest.raises(CommandError) as info:
        call_command("load_tasks", str(path))
    assert str(info.value).startswith("invalid task spec, nothing loaded:\n")
    assert "expands to more than 1,000,000 values" in str(info.value)
