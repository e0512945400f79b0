"""PsychoBench's ``questionnaires.json`` → questionnaire task specs with their published norms.

PsychoBench (Huang et al., ICLR 2024, github.com/CUHK-ARISE/PsychoBench) lists for each
instrument the item texts, the reverse-keyed item numbers, the sub-scales
(``categories``) with the items they sum or average (``compute_mode``) and the human
norms per group (``crowd``: mean, std, n). Its ``scale`` is the top answer plus the
bottom one (a reverse-keyed answer x counts as ``scale − x``); the answer range is
stated in ``inner_setting`` ("numbers from 1 to 7").

Nothing here touches the database: `parse_questionnaires` checks the whole file and
returns every instrument's spec and norms, or raises naming instrument and field.
Its licence (GPL-3.0, research use only; several instruments are copyrighted by their
authors) is why the file is not bundled.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from benchmark.norms import NormRow, NormsError, check_rows
from benchmark.specs import spec_from_json

LICENCE = (
    "PsychoBench questionnaires.json: GPL-3.0 and research use only; each instrument's "
    "own copyright applies"
)
SOURCE = "Huang et al. 2024, PsychoBench (ICLR), questionnaires.json"
TRIAL = 'Statement {number}: "{text}" Your rating: <<{answer}>>'
RANGE = re.compile(r"numbers from (-?\d+) to (-?\d+)")

# What each sub-scale measures, by (instrument, category). PsychoBench names DTDD's
# third sub-scale "Neuroticism", but its items (want admiration, attention, prestige,
# special favours) are the Dirty Dozen's narcissism items.
CONSTRUCTS = {
    ("BFI", "Extraversion"): "extraversion",
    ("BFI", "Agreeableness"): "agreeableness",
    ("BFI", "Conscientiousness"): "conscientiousness",
    ("BFI", "Neuroticism"): "neuroticism",
    ("BFI", "Openness"): "openness",
    ("EPQ-R", "Extraversion"): "extraversion",
    ("EPQ-R", "Pschoticism"): "psychoticism",
    ("EPQ-R", "Neuroticism"): "neuroticism",
    ("EPQ-R", "Lying"): "social desirability",
    ("DTDD", "Machiavellianism"): "machiavellianism",
    ("DTDD", "Psychopathy"): "psychopathy",
    ("DTDD", "Neuroticism"): "narcissism",
    ("Empathy", "Overall"): "empathy",
    ("GSE", "Overall"): "self-efficacy",
    ("LOT-R", "Overall"): "optimism",
    ("EIS", "Overall"): "emotional intelligence",
    ("ICB", "Overall"): "implicit culture belief",
    ("ECR-R", "Attachment-related Anxiety"): "attachment anxiety",
    ("ECR-R", "Attachment-related Avoidance"): "attachment avoidance",
    ("BSRI", "Masculine"): "masculinity",
    ("BSRI", "Feminine"): "femininity",
}
# The scale that orients Π in an instrument, where it has one (more neuroticism, more Π).
ORIENTS_PI = {("BFI", "Neuroticism"), ("EPQ-R", "Neuroticism")}
UNSCORED = "unscored"


@dataclass
class Instrument:
    """One PsychoBench instrument as a task spec and its norms."""

    name: str
    spec: object
    norms: list[NormRow]


@dataclass
class Parsed:
    """Every usable instrument of the file, and the ones left out with the reason."""

    instruments: list[Instrument] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def slug_for(name: str) -> str:
    """``EPQ-R`` → ``psychobench-epq-r``."""
    return "psychobench-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _scale_key(category: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", category.lower()).strip("_")[:50]


def parse_questionnaires(text: str, path: str = "questionnaires.json") -> Parsed:
    """Check PsychoBench's questionnaire file and turn each instrument into a spec and norms.

    Instruments without sub-scales (16P, scored by its own website) are skipped and
    listed in ``skipped``. Items in no sub-scale (LOT-R's fillers) go into an
    ``unscored`` scale without norms.

    Raises:
        NormsError: not JSON, not a list of instruments, or any instrument with a missing
            or wrong field (an item in two sub-scales, a reverse key or sub-scale item
            that is not an item, an answer range that does not match ``scale``, a bad
            norm); every problem is listed, naming instrument and field.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NormsError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, list) or not data:
        raise NormsError(f"{path}: expected a list of instruments")
    parsed, problems, names = Parsed(), [], set()
    for index, entry in enumerate(data):
        where = f"{path}: instrument {index + 1}"
        try:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise NormsError(f"{where}: needs a 'name'")
            where = f"{path}: {entry['name']}"
            if entry["name"] in names:
                raise NormsError(f"{where}: the name appears twice")
            names.add(entry["name"])
            if not entry.get("categories"):
                parsed.skipped.append((entry["name"], "no sub-scales or norms in the file"))
                continue
            parsed.instruments.append(_instrument(entry, where))
        except (NormsError, KeyError, TypeError, ValueError) as exc:
            message = str(exc) if isinstance(exc, NormsError) else f"{where}: {_describe(exc)}"
            problems.append(message)
    if problems:
        raise NormsError("\n".join(problems))
    return parsed


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return f"bad value ({exc})"


def _instrument(entry: dict, where: str) -> Instrument:
    name = entry["name"]
    questions = {int(k): str(v) for k, v in entry["questions"].items()}
    found = RANGE.search(entry.get("inner_setting", "")) or RANGE.search(entry.get("prompt", ""))
    if found is None:
        raise NormsError(f"{where}, inner_setting: no 'numbers from A to B' answer range")
    low, high = int(found.group(1)), int(found.group(2))
    if low + high != int(entry["scale"]):
        raise NormsError(
            f"{where}, scale: {entry['scale']} is not {low} + {high} (reverse = scale − answer)"
        )
    mode = {"AVG": "mean", "SUM": "sum"}.get(entry["compute_mode"])
    if mode is None:
        raise NormsError(f"{where}, compute_mode: {entry['compute_mode']!r} is not AVG or SUM")
    reverse = {int(r) for r in entry["reverse"]}
    if stray := sorted(reverse - set(questions)):
        raise NormsError(f"{where}, reverse: {stray} are not item numbers")
    scale_of, scales, norms = {}, {}, []
    for cat in entry["categories"]:
        key = _scale_key(cat["cat_name"])
        if key in scales:
            raise NormsError(f"{where}, categories: {cat['cat_name']!r} appears twice")
        scales[key] = {
            "name": cat["cat_name"],
            "construct": CONSTRUCTS.get((name, cat["cat_name"])),
            "orients_pi": (name, cat["cat_name"]) in ORIENTS_PI,
        }
        for number in cat["cat_questions"]:
            if number not in questions:
                raise NormsError(f"{where}, {cat['cat_name']}: item {number} is not an item")
            if number in scale_of:
                raise NormsError(
                    f"{where}: item {number} is in both {scale_of[number]!r} and {key!r}"
                )
            scale_of[number] = key
        for crowd in cat.get("crowd", []):
            norms.append(
                NormRow(
                    scale=key,
                    group=str(crowd["crowd_name"]),
                    statistic=mode,
                    mean=float(crowd["mean"]),
                    sd=float(crowd["std"]),
                    n=int(crowd["n"]),
                    source=f"{SOURCE}: {name}, {cat['cat_name']}, {crowd['crowd_name']}",
                )
            )
    if any(number not in scale_of for number in questions):
        scales[UNSCORED] = {"name": "Filler items (not scored)"}
    items = [
        {
            "key": f"q{number}",
            "text": questions[number],
            "scale": scale_of.get(number, UNSCORED),
            "reverse": number in reverse,
        }
        for number in sorted(questions)
    ]
    spec = {
        "slug": slug_for(name),
        "family": "psychobench",
        "kind": "questionnaire",
        "title": f"{name} (PsychoBench)",
        "description": f"{name} as given in PsychoBench's questionnaires.json; "
        f"scale scores are the {mode} of the keyed items.",
        "instructions": entry["prompt"].strip(),
        "prompt": {"trial": TRIAL},
        "response_scale": {"min": low, "max": high},
        "scales": scales,
        "items": items,
    }
    try:
        model = spec_from_json(spec)
    except Exception as exc:  # pydantic's ValidationError, named with the instrument
        raise NormsError(f"{where}: not a valid questionnaire ({exc})") from None
    check_rows(norms, set(scales), where)
    return Instrument(name=name, spec=model, norms=norms)
