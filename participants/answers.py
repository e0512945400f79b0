"""The schema of one answer as the player posts it: sizes, types and ranges, checked first.

Everything in the body comes from a browser (or from anyone with a session link), so it
is parsed here before anything is looked up or stored: a bounded JSON object with
finite numbers, strings without NUL or lone surrogates, and a small typed telemetry
record whose unknown keys are dropped. A body that breaks a rule is refused with a
message naming the field; what passes can always be stored, exported and scored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

MAX_BODY_BYTES = 8 * 1024
MAX_DEPTH = 8
# The longest time limit a study can have (30 days): a real answer is never refused.
MAX_RT_MS = 30 * 24 * 60 * 60 * 1000.0
MAX_COUNT = 1_000_000
MAX_VIEWPORT = 100_000
STRING_LIMITS = {"item_key": 100, "answer": 200, "idempotency_key": 64}
MAX_CLIENT_TS = 40


class BadAnswer(ValueError):
    """The answer body breaks the schema; the message names the field."""


@dataclass(frozen=True)
class AnswerBody:
    """A checked answer body."""

    item_key: str
    answer: str
    idempotency_key: str
    rt_ms: float | None = None
    client_ts: str | None = None
    telemetry: dict = field(default_factory=dict)


def _depth(value, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()] or [level])
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value] or [level])
    return level


def _text(value, name: str, limit: int, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise BadAnswer(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise BadAnswer(f"{name} has {len(value)} characters; at most {limit}")
    if "\x00" in value:
        raise BadAnswer(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadAnswer(f"{name} contains a lone surrogate (not valid Unicode)") from None
    return value


def _number(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadAnswer(f"{name} must be a number")
    if not math.isfinite(value) or not low <= value <= high:
        raise BadAnswer(f"{name} must be a finite number from {low:g} to {high:g}")
    return float(value)


def _count(value, name: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise BadAnswer(f"{name} must be a whole number from 0 to {high}")
    return value


def clean_telemetry(value) -> dict:
    """The known telemetry fields, typed and bounded; unknown keys are dropped.

    Raises:
        BadAnswer: telemetry is not an object, or a known field has the wrong type or range.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadAnswer("telemetry must be an object")
    out: dict = {}
    if "webdriver" in value:
        if not isinstance(value["webdriver"], bool):
            raise BadAnswer("telemetry.webdriver must be true or false")
        out["webdriver"] = value["webdriver"]
    for key in ("blur", "paste"):
        if key in value:
            out[key] = _count(value[key], f"telemetry.{key}", MAX_COUNT)
    if "viewport" in value:
        viewport = value["viewport"]
        if not isinstance(viewport, list) or len(viewport) != 2:
            raise BadAnswer("telemetry.viewport must be [width, height]")
        out["viewport"] = [_count(v, "telemetry.viewport", MAX_VIEWPORT) for v in viewport]
    return out


def parse_answer(raw: bytes) -> AnswerBody:
    """Parse and check one answer body.

    Args:
        raw: the request body.

    Returns:
        The checked answer.

    Raises:
        BadAnswer: too large, not a JSON object, nested too deeply, or a field that breaks
            its rule (the message names it).
    """
    if len(raw) > MAX_BODY_BYTES:
        raise BadAnswer(f"the answer has {len(raw):,} bytes; at most {MAX_BODY_BYTES:,}")
    try:
        # NaN and ±Infinity parse to floats; the field checks then refuse them by name.
        body = json.loads(raw)
    except RecursionError:
        raise BadAnswer(f"the answer is nested more than {MAX_DEPTH} levels deep") from None
    except UnicodeDecodeError:
        raise BadAnswer("the answer is not UTF-8 text") from None
    except ValueError as exc:
        raise BadAnswer(f"the answer is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadAnswer("the answer must be a JSON object")
    if _depth(body) > MAX_DEPTH:
        raise BadAnswer(f"the answer is nested more than {MAX_DEPTH} levels deep")
    strings = {name: _text(body.get(name), name, limit) for name, limit in STRING_LIMITS.items()}
    rt_ms = body.get("rt_ms")
    client_ts = body.get("client_ts")
    return AnswerBody(
        **strings,
        rt_ms=None if rt_ms is None else _number(rt_ms, "rt_ms", 0, MAX_RT_MS),
        client_ts=_text(client_ts, "client_ts", MAX_CLIENT_TS, required=False) or None,
        telemetry=clean_telemetry(body.get("telemetry")),
    )


def finite_or_none(value) -> float | None:
    """A stored number if it is finite, else None (rows stored before these checks)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
