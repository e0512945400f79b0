"""Item 8: private files, logs without session tokens, safe credit URLs, limits, short errors."""

import io
import logging
import os
import socket
import stat
import struct
import subprocess
import sys
import time

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from benchmark.psych201 import Psych201Error, scan
from participants.models import Session
from participants.recruitment import completion_url
from tests.test_config import ROOT, settings_in_subprocess

TOKEN = "Zq3vVxXoR5mJ8nK2pL4sT6uW8yA0bC1dE3fG5hI7jK9"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.embedded
def test_var_dir_sqlite_file_and_secret_key_are_private(tmp_path):
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    wal = settings_in_subprocess(
        {"GEPPETTO_VAR_DIR": str(var)},
        "__import__('django.db').db.connection.cursor().execute('create table t (x)') and 'ok'",
    )
    assert wal == "ok"
    assert mode(var) == 0o700
    assert mode(var / "secret_key") == 0o600
    for name in ("geppetto.sqlite3", "geppetto.sqlite3-wal", "geppetto.sqlite3-shm"):
        if (var / name).exists() or name == "geppetto.sqlite3":
            assert mode(var / name) == 0o600, name


def test_django_logs_carry_no_session_token(db):
    handler = next(h for h in logging.getLogger().handlers if h.filters)
    stream, handler.stream = handler.stream, io.StringIO()
    try:
        assert Client().get(f"/s/p/{TOKEN}/").status_code == 404
        written = handler.stream.getvalue()
    finally:
        handler.stream = stream
    assert "Not Found: /s/p/<token>/" in written
    assert TOKEN not in written


def test_gunicorn_access_and_error_logs_carry_no_session_token(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "GEPPETTO_VAR_DIR": str(tmp_path),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
    }
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    httpx.get(f"{url}/admin/login/", timeout=2)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            page = httpx.get(
                f"{url}/s/p/{TOKEN}/", headers={"Referer": f"{url}/s/p/{TOKEN}/"}, timeout=5
            )
            assert page.status_code == 404
            httpx.post(f"{url}/s/p/{TOKEN}/answer", content=b"{}", timeout=5)
        finally:
            server.terminate()
            server.wait(10)
    written = log.read_text()
    assert '"GET /s/p/<token>/ HTTP/1.1" 404' in written
    assert TOKEN not in written


@pytest.mark.django_db
def test_a_sona_credit_url_must_be_a_web_address(q_version, make_study):
    study = make_study(
        q_version, source="sona", sona_credit_url="javascript:alert(document.cookie)//{id}"
    )
    with pytest.raises(ValidationError) as info:
        study.full_clean()
    assert info.value.message_dict["sona_credit_url"] == [
        "The credit URL must start with https:// (or http://)."
    ]
    # A row stored before the check sends nobody there.
    assert completion_url(study, Session(recruitment_id="123")) == ""
    study.sona_credit_url = "https://u.sona-systems.com/credit?survey_code={id}"
    study.full_clean()
    assert completion_url(study, Session(recruitment_id="123")).endswith("survey_code=123")


@pytest.mark.django_db
@pytest.mark.parametrize(("minutes", "ok"), [(0, False), (4, False), (5, True), (43201, False)])
def test_time_limit_has_a_sane_range(q_version, make_study, minutes, ok):
    study = make_study(q_version, time_limit_minutes=minutes)
    if ok:
        study.full_clean()
        return
    with pytest.raises(ValidationError) as info:
        study.full_clean()
    assert info.value.message_dict["time_limit_minutes"] == ["From 5 to 43,200 minutes (30 days)."]


def empty_members_zip(names: list[str]) -> bytes:
    """A stored zip of empty members, written directly (zipfile takes ~15 s for 100,000)."""
    local, central = bytearray(), bytearray()
    for name in names:
        raw = name.encode()
        offset = len(local)
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 33, 0, 0, 0, len(raw), 0)
        local += raw
        central += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            0,
            0,
            33,
            0,
            0,
            0,
            len(raw),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += raw
    count, start = len(names), len(local)
    zip64_at = start + len(central)
    # More than 65,535 members need the zip64 end records.
    zip64 = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(central), start
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, zip64_at, 1)
    end = (
        zip64
        + locator
        + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(central), start, 0)
    )
    return bytes(local + central + end)


def test_a_zip_with_100000_members_gives_a_short_error(tmp_path):
    path = tmp_path / "many.zip"
    path.write_bytes(empty_members_zip([f"part-{n:06d}.txt" for n in range(100_000)]))
    with pytest.raises(Psych201Error) as info:
        scan(path, "many.zip")
    message = str(info.value)
    assert len(message) < 400
    assert (
        "many.zip must hold exactly one .jsonl file; it holds 100,000 files: part-000000.txt"
        in (message)
    )


@pytest.mark.django_db
def test_head_on_a_study_link_is_200_and_takes_no_place(q_version, make_study):
    study = make_study(q_version)
    client = Client()
    head = client.head(f"/s/{study.slug}/", {"PROLIFIC_PID": "5f3a1b2c3d4e5f6a7b8c9d01"})
    assert head.status_code == 200 and head.content == b""
    assert not Session.objects.exists()
    assert client.head("/s/no-such-study/").status_code == 404
    start = client.get(f"/s/{study.slug}/", {"PROLIFIC_PID": "5f3a1b2c3d4e5f6a7b8c9d01"})
    assert client.head(start["Location"]).status_code == 200
