"""Psych-201 import and export: round trips on the shipped files, and every kind of bad input."""

import gzip
import io
import json
import re
import time
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from benchmark import psych201
from benchmark.models import HumanDataset, Task, Transcript
from benchmark.psych201 import Psych201Error, parse_spans, scan
from benchmark.services.datasets import export_psych201, import_psych201
from tests.test_specs import GOOD

# The Psych-201 files Geppetto ships (byte-identical copies of the published ones, see
# DATA.md), so these tests need nothing beside the clone.
BUNDLED = Path(__file__).resolve().parents[1] / "benchmark" / "data" / "psych201"
BUNDLED_FILES = [
    BUNDLED / "thoma2025riskychoice.jsonl.gz",
    BUNDLED / "franke2024bayesian.jsonl.gz",
    BUNDLED / "dezfouli2019.jsonl.zip",
]
EXPECTED = {  # participants, responses, default slug (counts from SOURCES.md)
    "thoma2025riskychoice": (301, 2709, "thoma2025riskychoice"),
    "franke2024bayesian": (302, 1208, "franke2024bayesian"),
    "dezfouli2019": (101, 132_251, "dezfouli2019"),
}


def stem(path: Path) -> str:
    return path.name.split(".")[0]


GOOD_LINE = b'{"text": "You pick <<A>>.", "experiment": "e", "participant": "1"}'


def original_bytes(path: Path) -> bytes:
    if path.suffix == ".zip":
        return zipfile.ZipFile(path).read("prompts.jsonl")
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    return path.read_bytes()


def snapshot(dataset):
    return [
        (t.line, t.participant, t.experiment, t.text, t.spans, t.rts, t.profile, t.extra)
        for t in dataset.transcripts.order_by("line")
    ]


def no_rows():
    return HumanDataset.objects.count() == 0 and Transcript.objects.count() == 0


def write(tmp_path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def exported(dataset) -> str:
    out = io.StringIO()
    export_psych201(dataset=dataset, out=out)
    return out.getvalue()


# --- the shipped files ------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.embedded
@pytest.mark.parametrize("path", BUNDLED_FILES, ids=stem)
def test_round_trip_of_every_bundled_file(path, tmp_path):
    participants, responses, slug = EXPECTED[stem(path)]
    started = time.perf_counter()
    dataset, created = import_psych201(source=path, file_name=path.name)
    seconds = time.perf_counter() - started
    print(f"\nimport {stem(path)}: {participants} participants in {seconds:.2f} s")
    assert created
    assert (dataset.slug, dataset.n_participants, dataset.file_name) == (
        slug,
        participants,
        path.name,
    )
    assert Transcript.objects.filter(dataset=dataset).count() == participants
    assert sum(len(t.spans) for t in dataset.transcripts.all()) == responses

    content = original_bytes(path)
    lines = [line for line in content.decode("utf-8").split("\n") if line.strip()]
    # Every participant's fields are the ones in the file, the spans those a regex finds.
    for t, line in zip(dataset.transcripts.order_by("line"), lines, strict=True):
        obj = json.loads(line)
        assert (t.text, t.experiment, t.participant) == (
            obj["text"],
            obj["experiment"],
            str(obj["participant"]),
        )
        assert t.responses == re.findall(r"<<(.*?)>>", obj["text"], flags=re.DOTALL)
        assert t.rts == obj.get("RTs")
        assert t.profile == {k: v for k, v in obj.items() if k in psych201.PROFILE_FIELDS}
        known = {"text", "experiment", "participant", "RTs", *psych201.PROFILE_FIELDS}
        assert t.extra == {k: v for k, v in obj.items() if k not in known}

    # The export is the original content, byte for byte.
    text = exported(dataset)
    assert text.encode("utf-8") == content
    before = snapshot(dataset)

    # Importing the same file again, or the same content packed differently, is a no-op.
    again, created_again = import_psych201(source=path, file_name=path.name)
    assert (again.pk, created_again) == (dataset.pk, False)
    packed = write(tmp_path, "other-name.jsonl.gz", gzip.compress(text.encode()))
    same, created_same = import_psych201(source=packed, file_name=packed.name)
    assert (same.pk, created_same) == (dataset.pk, False)
    assert (HumanDataset.objects.count(), Transcript.objects.count()) == (1, participants)

    # Export → import (into an empty database) gives every participant back unchanged.
    sha = dataset.content_sha256
    dataset.delete()
    reimported, created = import_psych201(
        source=write(tmp_path, "exported.jsonl", text.encode()), file_name="exported.jsonl"
    )
    assert created and reimported.content_sha256 == sha
    assert snapshot(reimported) == before
    assert exported(reimported) == text


@pytest.mark.django_db
@pytest.mark.embedded
def test_the_import_command_on_the_dezfouli_zip():
    path = BUNDLED_FILES[2]
    out = io.StringIO()
    call_command("import_psych201", str(path), stdout=out)
    assert re.fullmatch(
        r"Imported 101 participants \(132,251 responses\) into dataset dezfouli2019 "
        r"in \d+\.\d s\n",
        out.getvalue(),
    )
    dataset = HumanDataset.objects.get()
    assert dataset.transcripts.get(line=1).profile["diagnosis"] in {
        "Healthy",
        "Depression",
        "Bipolar",
    }


# --- spans ------------------------------------------------------------------------------


def test_span_parsing_by_hand():
    text = "You pick <<A>> and then <<BB>>.\nDone <<>>"
    assert parse_spans(text) == [(11, 12), (26, 28), (39, 39)]
    assert [text[a:b] for a, b in parse_spans(text)] == ["A", "BB", ""]
    assert parse_spans("no answers here") == []
    assert parse_spans("<<L>><<R>>") == [(2, 3), (7, 8)]
    # Multi-line and non-ASCII answers; offsets count characters, not bytes.
    text = "Réponse: <<oui,\nnon>> ok"
    assert parse_spans(text) == [(11, 19)]
    assert text[11:19] == "oui,\nnon"
    # A '>>' outside any span is ordinary text; '>>>' closes at the first '>>'.
    assert parse_spans("score >> 3, pick <<A>>>") == [(19, 20)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc <<A", "'<<' at character 4 is never closed"),
        ("<<A>> then <<", "'<<' at character 11 is never closed"),
        ("<<A <<B>>", "'<<' at character 4 opens inside the span opened at character 0"),
        ("x <<A <<B>> C>>", "'<<' at character 6 opens inside the span opened at character 2"),
    ],
)
def test_unclosed_and_nested_markers(text, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_spans(text)


# --- bad input: the exact message, and nothing written ------------------------------------


def record(**fields) -> bytes:
    base = {"text": "You pick <<A>>.", "experiment": "e", "participant": "1"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


BAD = {
    "truncated-line-3": (
        GOOD_LINE + b"\n" + GOOD_LINE + b'\n{"text": "You pick <<A',
        "line 3: not valid JSON: the line ends before the object does (truncated?)",
    ),
    "rt-count": (
        record(text="<<A>> <<B>> <<A>> <<B>>", RTs=[1, 2, 3]),
        "line 1: 3 RTs for 4 responses",
    ),
    "rts-not-numbers": (
        record(RTs=["fast"]),
        'line 1: \'RTs\'[0] is "fast": an RT must be a number, a numeric string, null or ""',
    ),
    "rts-boolean": (
        GOOD_LINE + b"\n" + record(text="<<A>> <<B>>", RTs=[12, True]),
        "line 2: 'RTs'[1] is true: an RT must be a number, a numeric string, null or \"\"",
    ),
    "rts-nan-string": (
        record(RTs=["NaN"]),
        'line 1: \'RTs\'[0] is "NaN": an RT must be a number, a numeric string, null or ""',
    ),
    "rts-not-a-list": (
        record(RTs="1042"),
        "line 1: 'RTs' must be a list (one reaction time per response)",
    ),
    "no-text": (record(text=...), "line 1: missing required key 'text'"),
    "no-participant": (record(participant=...), "line 1: missing required key 'participant'"),
    "text-not-string": (record(text=5), "line 1: 'text' must be a string"),
    "participant-bool": (
        record(participant=True),
        "line 1: 'participant' must be a string or a number",
    ),
    "participant-too-long": (
        record(participant="p" * 201),
        "line 1: 'participant' is longer than 200 characters",
    ),
    "non-utf8": (
        GOOD_LINE + b'\n{"text": "caf\xe9 <<A>>", "experiment": "e", "participant": "2"}',
        "line 2: not UTF-8 (byte offset 13 in the line)",
    ),
    "not-object": (b"[1, 2]", "line 1: expected a JSON object, got list"),
    "garbage": (b'{"text" "x"}', "line 1: not valid JSON: Expecting ':' delimiter at character 8"),
    "nul": (
        record(text="a\x00b"),
        "line 1: a value contains a NUL character (\\u0000), which the database cannot store",
    ),
    "unclosed": (
        record(text="<<A"),
        "line 1: 'text': '<<' at character 0 is never closed",
    ),
    "nested": (
        GOOD_LINE + b"\n\n" + record(text="I <<think <<A>>"),
        "line 3: 'text': '<<' at character 10 opens inside the span opened at character 2",
    ),
    "reserved-key": (
        record(__participant_json__=1),
        "line 1: the key '__participant_json__' is reserved",
    ),
    "reserved-format-key": (
        record(__json_format__={"line": "x"}),
        "line 1: the key '__json_format__' is reserved",
    ),
    "empty": (b"", "bad.jsonl holds no participants (the file is empty)"),
    "blank-lines": (b"\n  \n\n", "bad.jsonl holds no participants (the file is empty)"),
}


@pytest.mark.django_db
@pytest.mark.embedded
@pytest.mark.parametrize(("content", "message"), BAD.values(), ids=BAD.keys())
def test_bad_input_names_the_line_and_writes_nothing(tmp_path, content, message):
    path = write(tmp_path, "bad.jsonl", content)
    with pytest.raises(Psych201Error) as info:
        import_psych201(source=path, file_name="bad.jsonl")
    assert str(info.value) == message
    line = re.match(r"line (\d+):", message)
    assert info.value.line == (int(line.group(1)) if line else None)
    assert no_rows()


@pytest.mark.django_db
@pytest.mark.embedded
def test_a_bad_line_812_of_1000_means_nothing_is_written(tmp_path):
    lines = [
        json.dumps({"text": f"Trial <<{i % 2}>>", "experiment": "e", "participant": str(i)})
        for i in range(1000)
    ]
    lines[811] = lines[811].replace('"text"', '"txet"')
    path = write(tmp_path, "big.jsonl", ("\n".join(lines) + "\n").encode())
    with pytest.raises(Psych201Error) as info:
        import_psych201(source=path, file_name="big.jsonl")
    assert str(info.value) == "line 812: missing required key 'text'"
    assert info.value.line == 812
    assert no_rows()
    with pytest.raises(CommandError) as info:
        call_command("import_psych201", str(path))
    assert str(info.value) == f"{path}: line 812: missing required key 'text'; nothing was imported"
    assert no_rows()


class ReadCounter(io.RawIOBase):
    """A file object that remembers how many bytes were read from it."""

    def __init__(self, path: Path):
        self.handle = path.open("rb")
        self.read_bytes = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        return self.handle.seek(offset, whence)

    def readinto(self, buffer):
        n = self.handle.readinto(buffer)
        self.read_bytes += n
        return n

    def close(self):
        self.handle.close()
        super().close()


@pytest.mark.django_db
def test_a_50_mb_line_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as handle:
        handle.write(GOOD_LINE + b"\n")
        handle.write(b'{"text": "' + b"x" * (50 * 1024 * 1024) + b'", "experiment": "e"}\n')
    counter = ReadCounter(path)
    with pytest.raises(Psych201Error) as info:
        import_psych201(source=counter, file_name="huge.jsonl")
    counter.close()
    assert str(info.value) == "line 2: longer than 33,554,432 bytes (PSYCH201_MAX_LINE_BYTES)"
    # Reading stopped just past the limit (+ one read buffer), far short of 50 MB.
    assert 32 * 2**20 < counter.read_bytes <= 32 * 2**20 + 2 * 2**20
    assert no_rows()


# --- containers ---------------------------------------------------------------------------


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.django_db
@pytest.mark.embedded
def test_a_zip_must_hold_exactly_one_jsonl(tmp_path):
    two = make_zip(tmp_path / "two.zip", {"a.jsonl": GOOD_LINE, "b.jsonl": GOOD_LINE})
    with pytest.raises(Psych201Error) as info:
        import_psych201(source=two, file_name=two.name)
    assert str(info.value) == "two.zip must hold exactly one .jsonl file; it holds a.jsonl, b.jsonl"
    none = make_zip(tmp_path / "none.zip", {"readme.txt": b"hi"})
    with pytest.raises(Psych201Error) as info:
        import_psych201(source=none, file_name=none.name)
    assert str(info.value) == "none.zip must hold exactly one .jsonl file; it holds readme.txt"
    broken = write(tmp_path, "broken.zip", b"PK\x03\x04 not really")
    with pytest.raises(Psych201Error, match=r"^broken\.zip is not a readable zip file"):
        import_psych201(source=broken, file_name=broken.name)
    truncated = write(tmp_path, "cut.jsonl.gz", gzip.compress(GOOD_LINE * 50)[:-20])
    with pytest.raises(Psych201Error) as info:
        import_psych201(source=truncated, file_name=truncated.name)
    assert str(info.value) == (
        "the file cannot be decompressed "
        "(Compressed file ended before the end-of-stream marker was reached)"
    )
    assert no_rows()

    # macOS resource forks and dot-files are not data.
    mac = make_zip(
        tmp_path / "mac.zip",
        {
            "data/p.jsonl": GOOD_LINE + b"\n",
            "__MACOSX/data/._p.jsonl": b"\x00\x05",
            "data/.hidden.jsonl": b"junk",
        },
    )
    dataset, created = import_psych201(source=mac, file_name=mac.name)
    assert created and dataset.transcripts.get().responses == ["A"]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["zip", "gz"])
def test_decompression_stops_at_the_upload_limit(tmp_path, settings, kind):
    settings.PSYCH201_MAX_UPLOAD_BYTES = 1_000_000
    content = (GOOD_LINE + b"\n") * 100_000  # 6.6 MB that compresses to a few KB
    if kind == "zip":
        bomb = make_zip(tmp_path / "bomb.zip", {"p.jsonl": content})
    else:
        bomb = write(tmp_path, "bomb.jsonl.gz", gzip.compress(content))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(Psych201Error) as info:
        import_psych201(source=bomb, file_name=bomb.name)
    assert str(info.value) == (
        "the content is larger than 1,000,000 bytes (PSYCH201_MAX_UPLOAD_BYTES)"
    )
    assert no_rows()


@pytest.mark.django_db
def test_uploaded_files_sniffed_formats_and_pipes(tmp_path):
    content = GOOD_LINE + b"\n" + record(participant=7, text="<<B>>", RTs=[812.5]) + b"\n"
    upload = SimpleUploadedFile("upload.jsonl.gz", gzip.compress(content))
    upload.read(3)  # a form may have peeked at it: reading starts from the beginning
    dataset, created = import_psych201(source=upload, file_name=upload.name)
    assert created
    assert [t.responses for t in dataset.transcripts.all()] == [["A"], ["B"]]
    assert exported(dataset).encode() == content

    # No known suffix: the magic bytes decide; the content is the same dataset.
    unnamed = SimpleUploadedFile(
        "blob", make_zip(tmp_path / "x.zip", {"p.jsonl": content}).read_bytes()
    )
    assert import_psych201(source=unnamed, file_name="blob") == (dataset, False)

    class Pipe(io.RawIOBase):
        """A stream that cannot seek, like a socket or stdin."""

        def __init__(self, data):
            self.data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            return self.data.readinto(buffer)

    piped, created = import_psych201(source=Pipe(GOOD_LINE), file_name="piped.jsonl")
    assert created and piped.transcripts.get().text == "You pick <<A>>."
    assert scan(str(write(tmp_path, "p.jsonl", content)), "p.jsonl").sha256 == (
        dataset.content_sha256
    )


# --- what is kept ---------------------------------------------------------------------------

# Lines written the ways the published Psych-201 files are (surveyed over the repository's
# 26 files stored in git: 5,740 participants). Each must import and export byte for byte.
WILD = {
    # busch2024_stroop: RTs as numeric strings, age as a string, experiment ending in "/".
    "rts-as-strings": '{"text": "Say <<red>> then <<blue>>.", "experiment": "busch2024_stroop/", '
    '"participant": "17", "RTs": ["1159", "3268.5"], "age": "37"}',
    # RTs with missing values written as "" and null.
    "rts-missing": '{"text": "<<a>> <<b>> <<c>>", "experiment": "e", "participant": 4, '
    '"RTs": ["", null, "812"]}',
    # guenther2020LDT: integer participant and age; guenther2022relational: float age.
    "int-participant": '{"text": "<<yes>>", "experiment": "guenther2020LDT", "participant": 3, '
    '"age": 24}',
    "float-age": '{"text": "<<no>>", "experiment": "g", "participant": 9, "age": 31.0}',
    # guenther2022relational / 2024substitutions: a bare NaN for a missing age.
    "nan-age": '{"text": "<<band>>.\\n\\n", "experiment": "guenther2022Relational", '
    '"participant": 69, "age": NaN}',
    # alsobay2025publicGoodsGame: other key order, compact separators.
    "key-order-compact": '{"experiment":"wakTScBM","participant":"8kDwHv","text":"I give <<5>>."}',
    # little2024functionestimation: non-ASCII characters written as they are.
    "not-ascii": '{"text": "Schätzen Sie <<3,5>> – fertig", "experiment": "little2024", '
    '"participant": 1}',
    # sandbrink2024metacontrol: several extra keys with spaces and slashes in their names;
    # xu2023augmenting: extra keys holding lists of floats.
    "extra-keys": '{"text": "<<L>>", "experiment": "s", "participant": 2, '
    '"FACSIMILE SW": 0.25, "FACSIMILE A/D": -1.5, "FACSIMILE Compul": 0.0, '
    '"anxiety": [0.1, 0.25], "attention": [1.0]}',
    # Floats as another writer prints them (1e3), which json.dumps would write as 1000.0.
    "exponent": '{"text": "<<x>>", "experiment": "e", "participant": 5, "RTs": [1e3]}',
}


@pytest.mark.django_db
@pytest.mark.embedded
def test_files_as_published_import_and_export_byte_for_byte(tmp_path):
    content = ("\n".join(WILD.values()) + "\n").encode()
    path = write(tmp_path, "wild.jsonl", content)
    dataset, created = import_psych201(source=path, file_name=path.name)
    assert created and dataset.n_participants == len(WILD)
    rows = dict(zip(WILD, dataset.transcripts.order_by("line"), strict=True))
    # Reaction times are numbers for everything downstream; missing ones are None.
    assert rows["rts-as-strings"].rts == [1159, 3268.5]
    assert rows["rts-missing"].rts == [None, None, 812]
    assert rows["exponent"].rts == [1000.0]
    assert rows["rts-as-strings"].profile == {"age": "37"}
    assert rows["rts-as-strings"].experiment == "busch2024_stroop/"
    assert rows["nan-age"].profile == {"age": None}
    assert rows["int-participant"].participant == "3"
    assert rows["extra-keys"].extra["FACSIMILE A/D"] == -1.5
    assert rows["extra-keys"].extra["anxiety"] == [0.1, 0.25]
    # The export is the file.
    assert exported(dataset).encode() == content
    # ... and so is the export of its re-import: the round trip is a fixed point.
    sha = dataset.content_sha256
    dataset.delete()
    again, _ = import_psych201(
        source=write(tmp_path, "again.jsonl", exported_bytes := content), file_name="again.jsonl"
    )
    assert again.content_sha256 == sha and exported(again).encode() == exported_bytes


@pytest.mark.django_db
@pytest.mark.embedded
def test_types_and_odd_keys_survive_the_round_trip(tmp_path):
    lines = [
        # Participant as a number, profile of mixed types, extra keys with nested values.
        '{"text": "A <<x>>", "experiment": "e", "participant": 1, "age": 34, '
        '"gender": "female", "education": null, "scores": {"bdi": [1, 2.5]}, "flag": true}',
        # RTs null, unicode escaped as in the published files, a float participant.
        '{"text": "caf\\u00e9 <<\\ud83d\\ude00>>", "experiment": "e", "participant": 2.5, '
        '"RTs": null}',
        # RTs with a missing value.
        '{"text": "<<a>><<b>>", "experiment": "e", "participant": "03", "RTs": [null, 1200]}',
    ]
    path = write(tmp_path, "odd.jsonl", ("\n".join(lines) + "\n").encode())
    dataset, _ = import_psych201(source=path, file_name=path.name)
    first, second, third = dataset.transcripts.order_by("line")
    assert (first.participant, first.profile) == (
        "1",
        {"age": 34, "gender": "female", "education": None},
    )
    assert first.extra == {
        "scores": {"bdi": [1, 2.5]},
        "flag": True,
        "__participant_json__": 1,
        # Two extra keys: their order is written down (PostgreSQL's jsonb sorts keys).
        "__json_format__": {"keys": [*json.loads(lines[0])]},
    }
    assert (second.participant, second.rts, second.responses) == ("2.5", None, ["😀"])
    assert second.extra == {"RTs": None, "__participant_json__": 2.5}
    assert (third.participant, third.rts, third.extra) == ("03", [None, 1200], {})
    assert exported(dataset).splitlines() == lines


@pytest.mark.django_db
def test_windows_line_ends_blank_lines_and_a_byte_order_mark(tmp_path):
    content = b"\xef\xbb\xbf" + GOOD_LINE + b"\r\n\r\n" + record(participant="2") + b"\r\n"
    path = write(tmp_path, "crlf.jsonl", content)
    dataset, _ = import_psych201(source=path, file_name=path.name)
    assert list(dataset.transcripts.values_list("line", "participant", "text")) == [
        (1, "1", "You pick <<A>>."),
        (3, "2", "You pick <<A>>."),
    ]
    assert exported(dataset).encode() == GOOD_LINE + b"\n" + record(participant="2") + b"\n"


@pytest.mark.django_db
def test_slugs(tmp_path):
    path = write(tmp_path, "My Study.jsonl", GOOD_LINE + b"\n")
    first, _ = import_psych201(source=path, file_name=path.name)
    path.write_bytes(GOOD_LINE + b"\n\n")
    second, _ = import_psych201(source=path, file_name=path.name)
    assert (first.slug, second.slug) == ("my-study", "my-study-2")
    # A generic name: the experiment's first part names the dataset.
    upload = SimpleUploadedFile("prompts.jsonl", record(experiment="smith2020/raw.csv"))
    third, _ = import_psych201(source=upload, file_name=upload.name, name="Smith")
    assert (third.slug, third.name) == ("smith2020", "Smith")

    path.write_bytes(GOOD_LINE + b"\n\n\n")
    with pytest.raises(ValueError, match=r"^a dataset with the slug 'my-study' exists already$"):
        import_psych201(source=path, file_name=path.name, slug="my-study")
    with pytest.raises(ValueError, match=r"^'a b' is not a valid slug"):
        import_psych201(source=path, file_name=path.name, slug="a b")
    assert HumanDataset.objects.count() == 3
    fields = Transcript._meta
    assert fields.get_field("participant").max_length == psych201.MAX_PARTICIPANT_CHARS
    assert fields.get_field("experiment").max_length == psych201.MAX_EXPERIMENT_CHARS


@pytest.mark.django_db
def test_item_level_datasets_export_rendered_text(tmp_path):
    from benchmark.services.tasks import load_tasks

    spec_path = write(tmp_path, "mini-q.yaml", GOOD.encode())
    load_tasks([spec_path])
    task = Task.objects.get(slug="mini-q")
    dataset = HumanDataset.objects.create(
        slug="mini-answers", name="Mini", task=task, source="bundled", content_sha256="0" * 64
    )
    Transcript.objects.create(
        dataset=dataset,
        line=1,
        participant="p1",
        experiment="mini-q",
        answers={"q1": 3, "q2": 1},
        profile={"age": 41},
    )
    Transcript.objects.create(
        dataset=dataset,
        line=2,
        participant="p2",
        experiment="mini-q",
        answers={"q1": None, "q2": 2},
    )
    lines = [json.loads(line) for line in exported(dataset).splitlines()]
    assert lines == [
        {
            "text": (
                "Rate each statement from 1 to 3.\n\n1. I talk a lot. <<3>>\n2. I am quiet. <<1>>\n"
            ),
            "experiment": "mini-q",
            "participant": "p1",
            "age": 41,
        },
        {
            "text": "Rate each statement from 1 to 3.\n\n1. I am quiet. <<2>>\n",
            "experiment": "mini-q",
            "participant": "p2",
        },
    ]
    # What is exported imports again as ordinary transcripts.
    path = write(tmp_path, "mini.jsonl", exported(dataset).encode())
    again, _ = import_psych201(source=path, file_name=path.name)
    assert [t.responses for t in again.transcripts.order_by("line")] == [["3", "1"], ["2"]]

    # Without a task the answers cannot be rendered: the command says so, no file is left.
    dataset.task = None
    dataset.save()
    target = tmp_path / "mini-out.jsonl"
    with pytest.raises(CommandError) as info:
        call_command("export_psych201", "mini-answers", "-o", str(target))
    assert str(info.value) == (
        "mini-answers: dataset mini-answers holds item answers "
        "but no task version to render them with"
    )
    assert list(tmp_path.glob("mini-out*")) == []


# --- commands ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.embedded
def test_commands_import_and_export(tmp_path):
    second = record(participant="2", text="<<B>> then <<A>>", RTs=[500, 612])
    path = write(tmp_path, "study.jsonl", GOOD_LINE + b"\n" + second + b"\n")
    out = io.StringIO()
    call_command("import_psych201", str(path), "--slug", "study", "--name", "Study", stdout=out)
    assert re.fullmatch(
        r"Imported 2 participants \(3 responses\) into dataset study in \d+\.\d s\n",
        out.getvalue(),
    )
    assert HumanDataset.objects.get().name == "Study"
    out = io.StringIO()
    call_command("import_psych201", str(path), stdout=out)
    assert out.getvalue() == "Already imported as dataset study (same content)\n"

    out, err = io.StringIO(), io.StringIO()
    call_command("export_psych201", "study", stdout=out, stderr=err)
    assert out.getvalue().encode() == path.read_bytes()
    assert err.getvalue() == "2 participants written to stdout\n"

    target = tmp_path / "out.jsonl.gz"
    err = io.StringIO()
    call_command("export_psych201", "study", "-o", str(target), stderr=err)
    assert gzip.decompress(target.read_bytes()) == path.read_bytes()
    assert err.getvalue() == f"2 participants written to {target}\n"
    first_bytes = target.read_bytes()
    call_command("export_psych201", "study", "-o", str(target), stderr=io.StringIO())
    assert target.read_bytes() == first_bytes  # same data, same .gz bytes
    plain = tmp_path / "out.jsonl"
    call_command("export_psych201", "study", "--output", str(plain), stderr=io.StringIO())
    assert plain.read_bytes() == path.read_bytes()


@pytest.mark.django_db
def test_command_errors(tmp_path):
    path = write(tmp_path, "study.jsonl", GOOD_LINE + b"\n")
    with pytest.raises(CommandError) as info:
        call_command("import_psych201", str(tmp_path / "missing.jsonl"))
    assert str(info.value) == f"{tmp_path / 'missing.jsonl'}: no such file"
    with pytest.raises(CommandError) as info:
        call_command("import_psych201", str(path), "--task", "nope")
    assert str(info.value) == "no task 'nope'"
    with pytest.raises(CommandError) as info:
        call_command("import_psych201", str(path), "--slug", "bad slug!")
    assert str(info.value) == (
        f"{path}: 'bad slug!' is not a valid slug (letters, digits, '-' and '_', at most 150); "
        "nothing was imported"
    )
    assert no_rows()
    with pytest.raises(CommandError) as info:
        call_command("export_psych201", "nope")
    assert str(info.value) == "no dataset 'nope'"
