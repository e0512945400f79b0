"""Psych-201 JSONL: read, validate and write, without the database.

One JSON object per line is one participant: ``text`` (the session, every human
response inside ``<<…>>``), ``experiment``, ``participant``, optional ``RTs`` (one per
response) and profile keys; any other key is kept as it is. Files may be plain,
gzipped or a zip holding one ``.jsonl`` file. Reading is streamed: `scan` validates a
whole file and hashes its content while holding one line at a time, `iter_records`
reads it again for writing. The first problem is reported with its line.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings

from benchmark.models import PROFILE_FIELDS

OPEN, CLOSE = "<<", ">>"
REQUIRED = ("text", "experiment", "participant")
# The participant id is stored as text; its JSON value is kept here when it was not a
# string, so an export writes back exactly what was imported.
PARTICIPANT_JSON_KEY = "__participant_json__"
# RTs are stored as numbers (None = missing); the file's own values are kept here when
# they were written otherwise (numeric strings, "").
RTS_JSON_KEY = "__rts_json__"
# How the line was written, when not as `json.dumps` writes the conventional key order:
# {"keys": [...], "compact": true, "ascii": false}, or {"line": "<the line>"} when no
# setting reproduces it (numbers written as 1e3, nested objects whose key order the
# database may not keep).
FORMAT_KEY = "__json_format__"
RESERVED_KEYS = (PARTICIPANT_JSON_KEY, RTS_JSON_KEY, FORMAT_KEY)
# Column sizes of `Transcript` (PostgreSQL refuses longer values; SQLite would not).
MAX_PARTICIPANT_CHARS = 200
MAX_EXPERIMENT_CHARS = 500
GZIP_MAGIC, ZIP_MAGIC = b"\x1f\x8b", b"PK\x03\x04"
COPY_CHUNK = 1 << 20

Source = str | os.PathLike | BinaryIO


class Psych201Error(ValueError):
    """A file that cannot be imported; ``line`` is 1-based when the problem has one."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass
class Record:
    """One participant of a Psych-201 file."""

    line: int
    text: str
    experiment: str
    participant: str
    spans: list[tuple[int, int]]
    rts: list | None = None
    profile: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def responses(self) -> list[str]:
        """The texts inside the ``<<…>>`` spans."""
        return [self.text[a:b] for a, b in self.spans]


@dataclass
class Summary:
    """What `scan` learned from a valid file."""

    sha256: str
    participants: int
    responses: int
    experiment: str


def parse_spans(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` offsets of the inside of every ``<<…>>`` in ``text``.

    Every ``<<`` must be closed by a ``>>`` before the next ``<<``. A ``>>`` outside
    any span is ordinary text.

    Raises:
        ValueError: a ``<<`` that is never closed, or one that opens inside a span;
            the message gives the character offset.
    """
    spans = []
    position = 0
    while (start := text.find(OPEN, position)) != -1:
        end = text.find(CLOSE, start + 2)
        if end == -1:
            raise ValueError(f"'<<' at character {start} is never closed")
        nested = text.find(OPEN, start + 2, end)
        if nested != -1:
            raise ValueError(
                f"'<<' at character {nested} opens inside the span opened at character {start}"
            )
        spans.append((start + 2, end))
        position = end + 2
    return spans


class _Missing:
    """A bare NaN or Infinity: not JSON, but what Python's json writes for a missing value."""


MISSING = _Missing()


def _missing_constant(name: str) -> _Missing:
    return MISSING


def _has_missing(value) -> bool:
    if value is MISSING:
        return True
    if isinstance(value, dict):
        return any(_has_missing(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_missing(v) for v in value)
    return False


def _without_constants(value):
    """The value with every NaN/Infinity replaced by None (they cannot be stored as JSON)."""
    if value is MISSING:
        return None
    if isinstance(value, dict):
        return {k: _without_constants(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_constants(v) for v in value]
    return value


def _json_problem(exc: json.JSONDecodeError, decoded: str) -> str:
    if exc.pos >= len(decoded.rstrip()) or exc.msg.startswith("Unterminated string"):
        return "not valid JSON: the line ends before the object does (truncated?)"
    return f"not valid JSON: {exc.msg} at character {exc.pos}"


def _unstorable(value) -> str | None:
    """Why a parsed value cannot be stored (NUL character, lone surrogate), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return "contains a NUL character (\\u0000), which the database cannot store"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate escape (\\ud800-\\udfff), which is not text"
        return None
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        if problem := _unstorable(item):
            return problem
    return None


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_record(raw: bytes, line: int) -> Record:
    """Validate one line (without its line break) of a Psych-201 file.

    Raises:
        Psych201Error: the line is not UTF-8, not a JSON object, or a field is wrong.
    """
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Psych201Error(f"not UTF-8 (byte offset {exc.start} in the line)", line) from None
    if line == 1:
        decoded = decoded.removeprefix("\ufeff")
    try:
        obj = json.loads(decoded, parse_constant=_missing_constant)
    except json.JSONDecodeError as exc:
        raise Psych201Error(_json_problem(exc, decoded), line) from None
    except (ValueError, RecursionError) as exc:
        raise Psych201Error(f"not valid JSON: {exc}", line) from None
    if not isinstance(obj, dict):
        raise Psych201Error(f"expected a JSON object, got {type(obj).__name__}", line)
    # NaN/Infinity (e.g. "age": NaN in published files) are read as missing; the line is
    # then kept as written so that an export gives them back.
    constants = ("NaN" in decoded or "Infinity" in decoded) and _has_missing(obj)
    if constants:
        obj = _without_constants(obj)
    for key in REQUIRED:
        if key not in obj:
            raise Psych201Error(f"missing required key {key!r}", line)
    text, experiment, participant = (obj[key] for key in REQUIRED)
    if not isinstance(text, str):
        raise Psych201Error("'text' must be a string", line)
    if not isinstance(experiment, str):
        raise Psych201Error("'experiment' must be a string", line)
    if len(experiment) > MAX_EXPERIMENT_CHARS:
        raise Psych201Error(f"'experiment' is longer than {MAX_EXPERIMENT_CHARS} characters", line)
    if not (isinstance(participant, str) or _is_number(participant)):
        raise Psych201Error("'participant' must be a string or a number", line)
    if len(str(participant)) > MAX_PARTICIPANT_CHARS:
        raise Psych201Error(
            f"'participant' is longer than {MAX_PARTICIPANT_CHARS} characters", line
        )
    # Cheap test first: only lines that spell such an escape can hold such a value.
    if ("\\u0000" in decoded or "\\ud" in decoded or "\\uD" in decoded) and (
        problem := _unstorable(obj)
    ):
        raise Psych201Error(f"a value {problem}", line)
    try:
        spans = parse_spans(text)
    except ValueError as exc:
        raise Psych201Error(f"'text': {exc}", line) from None
    given_rts = obj.get("RTs")
    rts = None
    if given_rts is not None:
        if not isinstance(given_rts, list):
            raise Psych201Error("'RTs' must be a list (one reaction time per response)", line)
        rts = [_reaction_time(x, index, line) for index, x in enumerate(given_rts)]
        if len(rts) != len(spans):
            raise Psych201Error(f"{len(rts)} RTs for {len(spans)} responses", line)
    for key in RESERVED_KEYS:
        if key in obj:
            raise Psych201Error(f"the key {key!r} is reserved", line)
    # An explicit "RTs": null stays in extra, so the export writes it back.
    skip = {*REQUIRED, *PROFILE_FIELDS} | ({"RTs"} if rts is not None else set())
    extra = {k: v for k, v in obj.items() if k not in skip}
    if not isinstance(participant, str):
        extra[PARTICIPANT_JSON_KEY] = participant
    if rts is not None and any(isinstance(x, str) for x in given_rts):
        extra[RTS_JSON_KEY] = given_rts
    profile = {k: obj[k] for k in PROFILE_FIELDS if k in obj}
    if constants:
        extra[FORMAT_KEY] = {"line": decoded.rstrip("\r")}
    elif fmt := line_format(obj, decoded, rts=rts, profile=profile, extra=extra):
        extra[FORMAT_KEY] = fmt
    return Record(
        line=line,
        text=text,
        experiment=experiment,
        participant=str(participant),
        spans=spans,
        rts=rts,
        profile=profile,
        extra=extra,
    )


def _reaction_time(value, index: int, line: int) -> float | int | None:
    """One RT as a number: numbers and numeric strings; null and "" are missing.

    Raises:
        Psych201Error: anything else (text, a boolean, a list, a non-finite number).
    """
    if value is None or value == "":
        return None
    number = value
    if isinstance(value, str):
        try:
            number = int(value) if value.strip().lstrip("+-").isdigit() else float(value)
        except ValueError:
            number = None
    if not _is_number(number) or not math.isfinite(number):
        raise Psych201Error(
            f"'RTs'[{index}] is {json.dumps(value)[:40]}: an RT must be a number, a numeric "
            'string, null or ""',
            line,
        )
    return number


_FORMATS = (  # (compact, ascii): json.dumps settings seen in published files
    (False, True),
    (True, True),
    (False, False),
    (True, False),
)


def _dumps(obj: dict, *, compact: bool = False, ascii: bool = True) -> str:
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(obj, separators=separators, ensure_ascii=ascii)


def _nested_objects(value) -> bool:
    if isinstance(value, dict):
        return len(value) > 1 or any(_nested_objects(v) for v in value.values())
    if isinstance(value, list):
        return any(_nested_objects(v) for v in value)
    return False


def line_format(obj: dict, line: str, *, rts, profile: dict, extra: dict) -> dict | None:
    """What an export needs to write ``line`` back exactly; None when the default does.

    The default is `to_json_line`'s: `json.dumps` with its usual separators, ASCII
    escapes, keys in the conventional order. Otherwise the key order and json.dumps
    settings that reproduce the line are returned, or the line itself when none does.
    """
    line = line.rstrip("\r")
    # The database may reorder the keys of stored objects (PostgreSQL's jsonb does):
    # several extra keys, or objects inside values, need the order written down.
    extra_keys = [k for k in obj if k not in {*REQUIRED, *PROFILE_FIELDS, "RTs"}]
    if any(_nested_objects(v) for v in obj.values()):
        return {"line": line}
    default = to_json_line(
        text=obj["text"],
        experiment=obj["experiment"],
        participant=str(obj["participant"]),
        rts=rts,
        profile=profile,
        extra=extra,
    )
    if default == line and len(extra_keys) < 2:
        return None
    for compact, ascii in _FORMATS:
        if _dumps(obj, compact=compact, ascii=ascii) == line:
            fmt: dict = {"keys": list(obj)}
            if compact:
                fmt["compact"] = True
            if not ascii:
                fmt["ascii"] = False
            return fmt
    return {"line": line}


class _Limited(io.RawIOBase):
    """Counts decompressed bytes and stops past the upload limit (zip and gzip bombs)."""

    def __init__(self, stream: BinaryIO, limit: int):
        self.stream = stream
        self.limit = limit
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.stream.read(len(buffer))
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise Psych201Error(f"the file cannot be decompressed ({exc})") from None
        self.total += len(data)
        if self.total > self.limit:
            raise Psych201Error(
                f"the content is larger than {self.limit:,} bytes (PSYCH201_MAX_UPLOAD_BYTES)"
            )
        buffer[: len(data)] = data
        return len(data)


def _zip_member(archive: zipfile.ZipFile, file_name: str) -> zipfile.ZipInfo:
    members = [
        info
        for info in archive.infolist()
        if not info.is_dir()
        and not info.filename.startswith("__MACOSX/")
        and not PurePosixPath(info.filename).name.startswith(".")
    ]
    jsonl = [m for m in members if m.filename.lower().endswith(".jsonl")]
    if len(jsonl) != 1:
        # Name a few members, not all: an archive can hold 100,000 of them.
        names = ", ".join(m.filename[:100] for m in members[:5]) or "nothing"
        if len(members) > 5:
            names = f"{len(members):,} files: {names}, …"
        raise Psych201Error(f"{file_name} must hold exactly one .jsonl file; it holds {names}")
    return jsonl[0]


def _rewindable(handle: BinaryIO, stack: contextlib.ExitStack) -> BinaryIO:
    """The handle at its start; a stream that cannot seek is first copied to a temp file."""
    seekable = getattr(handle, "seekable", None)
    if seekable is not None and seekable():
        handle.seek(0)
        return handle
    copy = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by the stack)
    limit = settings.PSYCH201_MAX_UPLOAD_BYTES
    while chunk := handle.read(COPY_CHUNK):
        if copy.tell() + len(chunk) > limit:
            raise Psych201Error(
                f"the file is larger than {limit:,} bytes (PSYCH201_MAX_UPLOAD_BYTES)"
            )
        copy.write(chunk)
    copy.seek(0)
    return copy


@contextlib.contextmanager
def reusable(source: Source) -> Iterator[Source]:
    """The source, in a form that can be read more than once (a pipe is copied to a temp file)."""
    seekable = getattr(source, "seekable", None)
    if isinstance(source, str | os.PathLike) or (seekable is not None and seekable()):
        yield source
        return
    with contextlib.ExitStack() as stack:
        yield _rewindable(source, stack)


@contextlib.contextmanager
def open_content(source: Source, file_name: str) -> Iterator[BinaryIO]:
    """The decompressed JSONL bytes of a path or binary file, as a buffered stream.

    ``.zip`` and ``.gz`` names are decompressed; other names are sniffed for their
    magic bytes. A file object is read from its start and left open.

    Raises:
        Psych201Error: an unreadable archive, or one without exactly one ``.jsonl``.
    """
    name = file_name.lower()
    with contextlib.ExitStack() as stack:
        if isinstance(source, str | os.PathLike):
            handle = stack.enter_context(Path(source).open("rb"))
        else:
            handle = _rewindable(source, stack)
        head = handle.read(4)
        handle.seek(0)
        if name.endswith(".zip") or (not name.endswith(".jsonl") and head == ZIP_MAGIC):
            try:
                archive = stack.enter_context(zipfile.ZipFile(handle))
                raw = stack.enter_context(archive.open(_zip_member(archive, file_name)))
            # zipfile raises NotImplementedError for unsupported methods, RuntimeError if encrypted.
            except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as exc:
                raise Psych201Error(f"{file_name} is not a readable zip file ({exc})") from None
        elif name.endswith(".gz") or (not name.endswith(".jsonl") and head[:2] == GZIP_MAGIC):
            raw = stack.enter_context(gzip.GzipFile(fileobj=handle, mode="rb"))
        else:
            raw = handle
        limited = _Limited(raw, settings.PSYCH201_MAX_UPLOAD_BYTES)
        yield io.BufferedReader(limited, COPY_CHUNK)


def iter_lines(stream: BinaryIO, digest=None) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines (without line breaks) and their 1-based numbers.

    A line is read with a bounded ``readline``: a line over the limit is refused after
    holding at most the limit + 1 bytes of it.

    Args:
        stream: the decompressed content.
        digest: a hashlib object updated with every byte read, if given.

    Raises:
        Psych201Error: a line longer than ``PSYCH201_MAX_LINE_BYTES``.
    """
    max_line = settings.PSYCH201_MAX_LINE_BYTES
    number = 0
    while raw := stream.readline(max_line + 1):
        number += 1
        if len(raw) > max_line and not raw.endswith(b"\n"):
            raise Psych201Error(f"longer than {max_line:,} bytes (PSYCH201_MAX_LINE_BYTES)", number)
        if digest is not None:
            digest.update(raw)
        if raw.strip():
            yield number, raw.rstrip(b"\r\n")


def iter_records(source: Source, file_name: str, digest=None) -> Iterator[Record]:
    """Every participant of a file, validated one line at a time.

    Args:
        source: a path or a binary file object (read from its start).
        file_name: its name; it decides plain, ``.gz`` or ``.zip``.
        digest: a hashlib object updated with the decompressed bytes, if given.

    Raises:
        Psych201Error: at the first bad line.
    """
    with open_content(source, file_name) as stream:
        for number, raw in iter_lines(stream, digest):
            yield parse_record(raw, number)


def scan(source: Source, file_name: str) -> Summary:
    """Validate a whole file and hash its decompressed content, one line in memory at a time.

    Returns:
        The content's sha256 (the identity used to recognise a re-import) and counts.

    Raises:
        Psych201Error: the first problem found, with its line; or a file with no
            participants.
    """
    digest = hashlib.sha256()
    participants = responses = 0
    experiment = ""
    for record in iter_records(source, file_name, digest):
        if not participants:
            experiment = record.experiment
        participants += 1
        responses += len(record.spans)
    if not participants:
        raise Psych201Error(f"{file_name} holds no participants (the file is empty)")
    return Summary(digest.hexdigest(), participants, responses, experiment)


def to_json_line(
    *,
    text: str,
    experiment: str,
    participant: str,
    rts: list | None,
    profile: dict,
    extra: dict,
) -> str:
    """One participant as a Psych-201 line (without newline).

    Keys come in the conventional order: text, experiment, participant, RTs, the
    profile keys, then the others; ASCII-escaped, as `json.dumps` writes. A record
    imported from a file keeps what it needs to be written back exactly as it was read
    (the file's RT values, key order, separators and escaping: see `line_format`).
    """
    extra = dict(extra)
    fmt = extra.pop(FORMAT_KEY, None) or {}
    if "line" in fmt:
        return fmt["line"]
    if RTS_JSON_KEY in extra:
        rts = extra.pop(RTS_JSON_KEY)
    obj = {
        "text": text,
        "experiment": experiment,
        "participant": extra.pop(PARTICIPANT_JSON_KEY, participant),
    }
    if rts is not None:
        obj["RTs"] = rts
    elif "RTs" in extra:
        obj["RTs"] = extra.pop("RTs")
    obj.update({k: profile[k] for k in PROFILE_FIELDS if k in profile})
    obj.update(extra)
    if keys := fmt.get("keys"):
        obj = {k: obj[k] for k in keys if k in obj} | obj
    return _dumps(obj, compact=fmt.get("compact", False), ascii=fmt.get("ascii", True))
