"""One task spec → Psych-201 text, for models and for exports.

Pure functions: a spec and a trial history go in, text comes out. The same text is
what an LLM reads (`render_prompt`, ending with the ``<<`` that opens its answer)
and what a finished session exports to (`render_transcript`, every answer inside
``<<…>>`` with its character span).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from benchmark.environments import make_environment
from benchmark.specs import ANSWER_MARK, Option

OPEN, CLOSE = "<<", ">>"

# Psych-201 profile conditioning: "Interviewer: What is your age?\nInterviewee: 34".
PROFILE_QUESTIONS = {
    "age": "What is your age?",
    "gender": "What is your gender?",
    "nationality": "What is your nationality?",
    "education": "What is your highest level of education?",
    "diagnosis": "Do you have a psychiatric diagnosis?",
}


@dataclass(frozen=True)
class ItemView:
    """An item as the renderer sees it: key, text, template fields and options."""

    key: str
    text: str
    options: list[Option]
    fields: dict = field(default_factory=dict)
    scale: str = ""
    reverse: bool = False


@dataclass(frozen=True)
class Turn:
    """One answered trial: which item, the answer (an option key) and any feedback."""

    item_key: str
    answer: str
    feedback: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Prompt:
    """What a model reads before answering ``item_key``; ``text`` ends with ``<<``."""

    text: str
    item_key: str
    options: list[str]


@dataclass(frozen=True)
class Rendered:
    """A whole session as Psych-201 text, with ``[start, end)`` spans of each answer."""

    text: str
    spans: list[tuple[int, int]]

    @property
    def responses(self) -> list[str]:
        """The answers inside the spans."""
        return [self.text[a:b] for a, b in self.spans]


class RenderError(ValueError):
    """The template asks for a field the item, trial or feedback does not have."""


def spec_items(spec) -> list[ItemView]:
    """The items of a spec in their canonical order.

    Questionnaire and choice items come from the spec; a sequential task has one
    item per trial of its environment (keys ``t1``, ``t2``, …); transcript tasks
    have none.
    """
    kind = spec.kind
    if kind == "questionnaire":
        options = spec.response_scale.options()
        return [
            ItemView(key=i.key, text=i.text, options=options, scale=i.scale, reverse=i.reverse)
            for i in spec.items
        ]
    if kind == "choice":
        return [
            ItemView(key=i.key, text=i.text, options=list(i.options or spec.options), fields=i.data)
            for i in spec.items
        ]
    if kind == "sequential":
        env = environment_for(spec)
        return [
            ItemView(
                key=f"t{n + 1}", text="", options=list(spec.options), fields=env.trial(n).context
            )
            for n in range(env.n_trials)
        ]
    return []


def environment_for(spec):
    """The seeded environment of a sequential spec."""
    e = spec.environment
    return make_environment(e.name, seed=e.seed, params=e.params)


def render_profile(profile: dict | None) -> str:
    """Interview lines for the profile fields that are set, in a fixed order."""
    if not profile:
        return ""
    lines = []
    for key, question in PROFILE_QUESTIONS.items():
        value = profile.get(key)
        if value not in (None, ""):
            lines.append(f"Interviewer: {question}\nInterviewee: {value}")
    return "\n".join(lines) + "\n\n" if lines else ""


def _header(spec, profile: dict | None) -> str:
    return render_profile(profile) + spec.instructions.rstrip("\n") + "\n\n"


def _split_template(template: str) -> tuple[str, str]:
    before, after = template.split(ANSWER_MARK)
    return before, after


def _format(part: str, values: dict, item_key: str) -> str:
    try:
        return part.format_map(values)
    except KeyError as exc:
        names = sorted({n for _, n, _, _ in string.Formatter().parse(part) if n})
        raise RenderError(
            f"prompt.trial uses {{{exc.args[0]}}}, which item {item_key!r} does not provide "
            f"(template fields: {names}; available: {sorted(values)})"
        ) from None


def _values(item: ItemView, number: int) -> dict:
    return {"key": item.key, "text": item.text, "number": number, **item.fields}


def _trial_text(spec, item: ItemView, number: int, answer: str, feedback: dict) -> tuple[str, int]:
    """Rendered answered trial and the offset where the answer starts inside it."""
    before, after = _split_template(spec.prompt.trial)
    values = _values(item, number)
    head = _format(before, values, item.key) + OPEN
    tail = CLOSE + _format(after, {**values, **feedback}, item.key)
    return head + answer + tail, len(head)


def _items_by_key(spec, items: list[ItemView] | None) -> dict[str, ItemView]:
    return {i.key: i for i in (items if items is not None else spec_items(spec))}


def _body(spec, history: list[Turn], by_key: dict, profile: dict | None):
    """Header and answered trials joined by the separator, with answer spans."""
    text = _header(spec, profile)
    spans = []
    for number, turn in enumerate(history, start=1):
        item = _lookup(by_key, turn.item_key)
        if number > 1:
            text += spec.prompt.separator
        trial, offset = _trial_text(spec, item, number, turn.answer, turn.feedback)
        start = len(text) + offset
        spans.append((start, start + len(turn.answer)))
        text += trial
    return text, spans


def render_transcript(
    spec, history: list[Turn], *, profile: dict | None = None, items: list[ItemView] | None = None
) -> Rendered:
    """A whole session as Psych-201 text.

    Args:
        spec: a validated task spec.
        history: the answered trials, in the order they were answered.
        profile: optional participant profile (age, gender, …) prepended as interview lines.
        items: the spec's items if already computed (`spec_items`), to avoid recomputing.

    Returns:
        The text (ending with a newline, then the spec's footer if any) and every answer's span.

    Raises:
        RenderError: a turn names an unknown item, or the template needs a missing field.
    """
    text, spans = _body(spec, history, _items_by_key(spec, items), profile)
    text += "\n" + (spec.prompt.footer.rstrip("\n") + "\n" if spec.prompt.footer else "")
    return Rendered(text=text, spans=spans)


def render_prompt(
    spec,
    history: list[Turn],
    item_key: str,
    *,
    profile: dict | None = None,
    items: list[ItemView] | None = None,
) -> Prompt:
    """What a model reads before answering ``item_key``, given what came before.

    Args:
        spec: a validated task spec.
        history: answered trials so far (their answers and feedback are shown).
        item_key: the item to answer now.
        profile: optional participant profile, as in `render_transcript`.
        items: the spec's items if already computed.

    Returns:
        The prompt, ending with ``<<``, and the option keys that may follow it.

    Raises:
        RenderError: an unknown item, or the template needs a missing field.
    """
    by_key = _items_by_key(spec, items)
    text, _ = _body(spec, history, by_key, profile)
    item = _lookup(by_key, item_key)
    before, _ = _split_template(spec.prompt.trial)
    if history:
        text += spec.prompt.separator
    text += _format(before, _values(item, len(history) + 1), item.key) + OPEN
    return Prompt(text=text, item_key=item_key, options=[o.key for o in item.options])


def _lookup(by_key: dict[str, ItemView], key: str) -> ItemView:
    try:
        return by_key[key]
    except KeyError:
        raise RenderError(f"unknown item {key!r}") from None
