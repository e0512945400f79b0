"""Task spec schema, YAML loading with line-accurate errors, canonical form and hash.

A task is a YAML file under ``benchmark/tasks/<family>/``. `load_spec_file` parses it,
validates it against the pydantic models below and, when it is wrong, raises
`SpecError` naming the file, the line and the field (``items[3].scale``).
`canonical_json` / `spec_hash` give the identity of a spec: formatting, comments and
key order do not change the hash; any change of content does.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_serializer,
    model_validator,
)

ANSWER_MARK = "<<{answer}>>"
# Limits checked before anything is built from a file: a few hundred bytes of YAML
# aliases can otherwise expand to billions of nodes, and one number to billions of options.
MAX_SPEC_BYTES = 10 * 1024 * 1024
MAX_ALIASES = 200
MAX_NODES = 1_000_000
MAX_ITEMS = 20_000
MAX_OPTIONS = 100
MAX_SCALE_POINTS = 101
SLUG = r"^[a-z0-9][a-z0-9-]*$"
KEY = r"^[A-Za-z0-9_.:-]+$"


class SpecError(ValueError):
    """A task spec that cannot be used; the message names file, line and field.

    ``problems`` are ``(line, field, message)``, or ``(path, line, field, message)`` when
    one error reports several files (each problem then names its own file).
    """

    def __init__(self, path: str, problems: list[tuple]):
        self.path = path
        self.problems = problems
        lines = []
        for problem in problems:
            where, (line, field, message) = (
                (problem[0], problem[1:]) if len(problem) == 4 else (path, problem)
            )
            where = f"{where}, line {line}" if line else where
            lines.append(f"{where}, field {field}: {message}" if field else f"{where}: {message}")
        super().__init__("\n".join(lines))


class FieldError(ValueError):
    """Raised by a model validator about one of its fields, so errors point at that field."""

    def __init__(self, loc: tuple, message: str):
        self.loc = loc
        super().__init__(message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    """One answer a participant can give, e.g. a Likert point or a gamble."""

    key: str = Field(pattern=KEY, max_length=50)
    label: str = ""
    value: float | None = None


class PromptTemplate(_Strict):
    """How one trial reads in the Psych-201 transcript.

    ``trial`` is a format string containing ``<<{answer}>>`` exactly once; the
    text before it is what a model sees before answering, the text after it
    (feedback, if any) is added once the answer is known.
    """

    trial: str
    separator: str = "\n"
    footer: str = ""

    @model_validator(mode="after")
    def _one_answer_mark(self):
        if self.trial.count(ANSWER_MARK) != 1:
            raise FieldError(("trial",), f"must contain {ANSWER_MARK} exactly once")
        fields = {name for _, name, _, _ in string.Formatter().parse(self.trial) if name}
        bad = [name for name in fields if not re.fullmatch(r"[a-z_][a-z0-9_]*", name)]
        if bad:
            raise FieldError(("trial",), f"placeholders must be plain names, got {bad}")
        return self


class HumanDataRef(_Strict):
    """A bundled human dataset that `load_tasks` imports next to the task."""

    slug: str = Field(pattern=SLUG)
    name: str
    loader: Literal["ipip_csv", "choices13k", "psych201", "norms_csv"]
    file: str
    licence: str
    provenance: str
    options: dict[str, Any] = Field(default_factory=dict)


class _SpecBase(_Strict):
    slug: str = Field(pattern=SLUG, max_length=100)
    family: str = Field(pattern=SLUG, max_length=100)
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    instructions: str = Field(min_length=1)
    prompt: PromptTemplate
    human_data: list[HumanDataRef] = Field(default_factory=list)


class LikertScale(_Strict):
    """Response scale of a questionnaire: integers ``min``..``max`` with labels."""

    min: int
    max: int
    labels: dict[int, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ordered(self):
        if self.max <= self.min:
            raise FieldError(("max",), "must be greater than min")
        if self.max - self.min + 1 > MAX_SCALE_POINTS:
            raise FieldError(
                ("max",),
                f"a scale has at most {MAX_SCALE_POINTS} points; "
                f"{self.min}..{self.max} has {self.max - self.min + 1:,}",
            )
        outside = [k for k in self.labels if not self.min <= k <= self.max]
        if outside:
            raise FieldError(("labels",), f"labels outside {self.min}..{self.max}: {outside}")
        return self

    def options(self) -> list[Option]:
        """The scale points as options, keyed by their number."""
        return [
            Option(key=str(v), label=self.labels.get(v, ""), value=float(v))
            for v in range(self.min, self.max + 1)
        ]


CONSTRUCT = r"^[a-z][a-z0-9' -]*[a-z0-9]$"


class SubScale(_Strict):
    """A scale that items are summed into, with optional published norms.

    ``construct`` names what the scale measures in a canonical lowercase form
    (``neuroticism``), so the same construct is found across instruments;
    ``orients_pi`` marks the scale whose higher score means more self-attributed
    human-like experience (it fixes the sign of Π).
    """

    name: str
    norms: dict[str, float] | None = Field(
        default=None, description="published human mean/sd of the scale score"
    )
    # Spelt ``construct`` in YAML and JSON; a field of that name would shadow
    # pydantic's ``BaseModel.construct``.
    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)
    construct_name: str | None = Field(
        default=None,
        alias="construct",
        pattern=CONSTRUCT,
        max_length=100,
        description="canonical lowercase name",
    )
    orients_pi: bool = Field(default=False, description="a higher score means a higher Π")

    @model_serializer(mode="wrap")
    def _canonical(self, handler, info):
        data = handler(self)
        if (info.context or {}).get("canonical"):
            # Fields added after tasks were first hashed are left out of the canonical
            # form at their defaults, so the hash of every existing spec stays the same.
            for name, default in _ADDED_LATER.items():
                if data.get(name) == default:
                    data.pop(name)
        return data


_ADDED_LATER = {"construct": None, "orients_pi": False}


class QuestionnaireItem(_Strict):
    """One Likert statement."""

    key: str = Field(pattern=KEY, max_length=100)
    text: str = Field(min_length=1)
    scale: str
    reverse: bool = False
    attention_check: int | None = Field(default=None, description="the only correct answer")


def _unique_keys(items, what: str) -> None:
    seen = {}
    for index, item in enumerate(items):
        if item.key in seen:
            raise FieldError(
                (what, index, "key"), f"repeats key {item.key!r} of {what}[{seen[item.key]}]"
            )
        seen[item.key] = index


class QuestionnaireSpec(_SpecBase):
    """Likert items grouped into scales, with reverse keys."""

    kind: Literal["questionnaire"]
    response_scale: LikertScale
    scales: dict[str, SubScale]
    items: list[QuestionnaireItem] = Field(min_length=1)
    shuffle: bool = False

    @model_validator(mode="after")
    def _check(self):
        _unique_keys(self.items, "items")
        for index, item in enumerate(self.items):
            if item.scale not in self.scales:
                raise FieldError(
                    ("items", index, "scale"),
                    f"{item.scale!r} is not one of the scales {sorted(self.scales)}",
                )
        orienting = [key for key, scale in self.scales.items() if scale.orients_pi]
        if len(orienting) > 1:
            raise FieldError(
                ("scales", orienting[1], "orients_pi"),
                f"only one scale can orient Π; {orienting[0]!r} already does",
            )
        return self

    def options_for(self, item_key: str) -> list[Option]:
        """Answers offered for an item (the scale points)."""
        return self.response_scale.options()


class ChoiceItem(_Strict):
    """One choice problem; its own options override the task's."""

    key: str = Field(pattern=KEY, max_length=100)
    text: str = Field(min_length=1)
    options: list[Option] | None = Field(default=None, max_length=MAX_OPTIONS)
    data: dict[str, Any] = Field(default_factory=dict)


class ItemsFrom(_Strict):
    """Items generated from a bundled data file by a named loader."""

    loader: Literal["choices13k"]
    file: str
    subset: int | None = Field(
        default=None, ge=1, description="stratified subset size; all if unset"
    )
    seed: int = 0


class ChoiceSpec(_SpecBase):
    """Independent choice problems, each with options (e.g. two gambles)."""

    kind: Literal["choice"]
    options: list[Option] = Field(min_length=2, max_length=MAX_OPTIONS)
    items: list[ChoiceItem] = Field(default_factory=list)
    items_from: ItemsFrom | None = None
    shuffle: bool = True

    @model_validator(mode="after")
    def _check(self):
        if not self.items and self.items_from is None:
            raise FieldError(("items",), "give items or items_from")
        _unique_keys(self.items, "items")
        return self

    def options_for(self, item_key: str) -> list[Option]:
        """Answers offered for an item: its own options, else the task's."""
        for item in self.items:
            if item.key == item_key and item.options:
                return list(item.options)
        return list(self.options)


class Environment(_Strict):
    """A registered, seeded environment (see `benchmark.environments`)."""

    name: str
    seed: int = 0
    params: dict[str, Any] = Field(default_factory=dict)


class SequentialSpec(_SpecBase):
    """Trials played in order, each answer getting feedback from a seeded environment."""

    kind: Literal["sequential"]
    options: list[Option] = Field(min_length=2, max_length=MAX_OPTIONS)
    environment: Environment

    def options_for(self, item_key: str) -> list[Option]:
        """The same options on every trial."""
        return list(self.options)


class TranscriptSpec(_SpecBase):
    """Imported human sessions, scored by likelihood only."""

    kind: Literal["transcript"]
    experiment: str
    prompt: PromptTemplate | None = None
    choices_per_response: int | None = Field(
        default=None,
        ge=2,
        description="options a participant chose from at every response (random-guess baseline); "
        "unset when it varies within the task",
    )

    def options_for(self, item_key: str) -> list[Option]:
        """Transcript tasks have no items to offer options for."""
        return []


TaskSpec = Annotated[
    QuestionnaireSpec | ChoiceSpec | SequentialSpec | TranscriptSpec, Field(discriminator="kind")
]
_ADAPTER: TypeAdapter = TypeAdapter(TaskSpec)


# --- YAML with line numbers --------------------------------------------------


class _TooLarge(Exception):
    def __init__(self, line: int | None, message: str):
        self.line = line
        super().__init__(message)


class _CountingLoader(yaml.SafeLoader):
    """The safe loader, refusing more than `MAX_ALIASES` aliases while it composes."""

    def __init__(self, stream):
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent, index):
        """Count aliases as they are met, before any of them is expanded."""
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                line = self.peek_event().start_mark.line + 1
                raise _TooLarge(line, f"more than {MAX_ALIASES} aliases (*name)")
        return super().compose_node(parent, index)


def _node_line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _check_graph(root: yaml.Node) -> None:
    """Refuse Python tags, self-referencing aliases and more than `MAX_NODES` expanded nodes.

    Sizes are counted per node object with aliases expanded (a shared node counts each
    time it is used), in time linear in the file, not in the expansion.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise _TooLarge(_node_line(node), "an alias refers to the node that contains it")
        if node.tag.startswith("tag:yaml.org,2002:python/") or node.tag.startswith("!!python"):
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise _TooLarge(_node_line(node), f"the tag {tag} is not allowed (plain YAML only)")
        open_.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > MAX_NODES:
                raise _TooLarge(
                    _node_line(node), f"expands to more than {MAX_NODES:,} values (aliases)"
                )
        open_.discard(key)
        sizes[key] = total
        return total

    size(root)


def _load(text: str, path: str) -> tuple[yaml.Node | None, Any]:
    """Compose YAML within the limits, then build its data from the checked node graph."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(path, [(None, "", f"larger than {MAX_SPEC_BYTES:,} characters")])
    loader = _CountingLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_graph(root)
        return root, loader.construct_document(root)
    except _TooLarge as exc:
        raise SpecError(path, [(exc.line, "", str(exc))]) from None
    except RecursionError:
        raise SpecError(path, [(None, "", "nested too deeply")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise SpecError(path, [(line, "", f"not valid YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError(path, [(None, "", f"not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()


def _duplicate_keys(
    node: yaml.Node, where: str = "", seen_nodes: set | None = None
) -> list[tuple[int, str, str]]:
    # A node shared through aliases is walked once, so the walk is linear in the file.
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:
        return []
    seen_nodes.add(id(node))
    problems = []
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = key_node.value
            field = f"{where}.{key}" if where else str(key)
            if key in seen:
                problems.append((key_node.start_mark.line + 1, field, "key appears twice"))
            seen.add(key)
            problems += _duplicate_keys(value_node, field, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            problems += _duplicate_keys(child, f"{where}[{index}]", seen_nodes)
    return problems


def _locate(root: yaml.Node | None, loc: tuple) -> tuple[int | None, str]:
    """Line (1-based) and dotted field name of a pydantic error location.

    The line is that of the deepest YAML node the location reaches (a missing key
    points at its parent). Pydantic's union and validator tags are skipped.
    """
    node = root
    line = root.start_mark.line + 1 if root is not None else None
    name = ""
    for part in loc:
        if isinstance(part, str) and (part in _KINDS or part.startswith("function-")):
            continue
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            name += f"[{part}]"
            node = node.value[part] if part < len(node.value) else None
        else:
            name += f".{part}" if name else str(part)
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == str(part)), None)
            else:
                node = None
        if node is None:
            continue
        line = node.start_mark.line + 1
    return line, name


_KINDS = {"questionnaire", "choice", "sequential", "transcript"}


def parse_spec(text: str, path: str = "<spec>"):
    """Validate YAML text as a task spec.

    Args:
        text: the YAML document.
        path: shown in error messages.

    Returns:
        The validated spec model (one of the ``*Spec`` classes).

    Raises:
        SpecError: invalid YAML or an invalid field; the message names file, line and field.
    """
    root, data = _load(text, path)
    if root is None:
        raise SpecError(path, [(None, "", "the file is empty")])
    if problems := _duplicate_keys(root):
        raise SpecError(path, problems)
    if not isinstance(data, dict):
        raise SpecError(path, [(1, "", "a task spec must be a mapping of fields")])
    items = data.get("items")
    if isinstance(items, list) and len(items) > MAX_ITEMS:
        line, _ = _locate(root, ("items",))
        message = f"at most {MAX_ITEMS:,} items; the file has {len(items):,}"
        raise SpecError(path, [(line, "items", message)])
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if isinstance(cause := error.get("ctx", {}).get("error"), FieldError):
                loc, message = loc + cause.loc, str(cause)
            if error["type"] == "union_tag_invalid" or error["type"] == "union_tag_not_found":
                message = f"must be one of {sorted(_KINDS)}"
                loc = ("kind",)
            problems.append((*_locate(root, loc), message))
        raise SpecError(path, problems) from None


def load_spec_file(path: Path):
    """Read and validate one task YAML file.

    Args:
        path: the YAML file.

    Returns:
        The validated spec model.

    Raises:
        SpecError: unreadable, not UTF-8, or invalid.
    """
    if (size := path.stat().st_size) > MAX_SPEC_BYTES:
        raise SpecError(str(path), [(None, "", f"{size:,} bytes; at most {MAX_SPEC_BYTES:,}")])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(str(path), [(None, "", f"not UTF-8 text ({exc.reason})")]) from exc
    return parse_spec(text, str(path))


def canonical_json(spec: BaseModel | dict) -> str:
    """The canonical text of a spec: sorted keys, no whitespace, defaults filled in.

    Fields added to the schema later (`_ADDED_LATER`) are left out at their defaults:
    an unchanged file keeps its hash and creates no new version.
    """
    if isinstance(spec, dict):
        spec = spec_from_json(spec)
    data = spec.model_dump(mode="json", context={"canonical": True})
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_hash(spec: BaseModel | dict) -> str:
    """sha256 (hex) of `canonical_json`: the identity of a task version."""
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()


def spec_from_json(data: dict):
    """Rebuild a spec model from a stored `TaskVersion.spec`."""
    return _ADAPTER.validate_python(data)
