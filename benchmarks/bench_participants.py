"""Participant load: simulated participants doing the whole study, Geppetto beside oTree.

Run: make bench-participants
 or: .venv/bin/python benchmarks/bench_participants.py [--participants 200] [--duration 300]
     [--think 1,3] [--arrive SECONDS] [--no-otree]

Each simulated participant (locust, benchmarks/locust_participants.py) opens a Prolific
link, consents, reads the instructions, answers the 50 IPIP items one at a time with a
think time between answers, and finishes. Arrivals are spread so that everyone can finish
within ``--duration`` seconds. Geppetto runs under gunicorn (deploy/gunicorn.conf.py) on
PostgreSQL with the Redis cache; oTree (pip ``otree``, in its own venv under var/bench)
runs its production server on PostgreSQL with the same questionnaire as one page per
item, which is how oTree saves each answer as it is given.

Afterwards every answer a participant saw acknowledged is looked up in the database:
"lost" counts those missing or different. "Server CPU ms per answer" is the CPU the
server's processes used while the participants ran (start-up excluded; it is shown
apart), divided by the answers acknowledged. Then each server is started once more,
reaching PostgreSQL through a loopback proxy (in this process) that counts the
statements it sends (BEGIN, COMMIT and connection checks included), and
``--count-participants`` new participants (default 5) walk the study without
thinking: "queries per answer" is that count over their answers. The proxy adds a hop
to every query, so it is kept out of the timed run. With ``--think 0,0 --arrive 2``
every participant starts at once and answers as fast as the server replies, so
"answers per second" (from the first stored answer to the last) is the server's
saturation rate. Needs PostgreSQL on
127.0.0.1:5432 (user postgres) and Redis on 127.0.0.1:6379; the databases
geppetto_bench and geppetto_bench_otree (``--database``) and Redis database 12
(``--redis-db``) are dropped and created.
Servers bind to 127.0.0.1 only; their logs, locust's summaries and the results (JSON)
are left in var/bench/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"
PY = sys.executable
PG = "postgres://postgres@127.0.0.1:5432"
OTREE_VERSION = "6.0.15"
ITEMS = 50


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--duration", type=int, default=300, help="seconds for the whole run")
    parser.add_argument("--think", default="1,3", help="min,max seconds before each answer")
    parser.add_argument(
        "--arrive", type=float, help="seconds over which participants arrive (default: spread "
        "so that the last one can finish within --duration)",
    )  # fmt: skip
    parser.add_argument("--no-otree", action="store_true", help="skip the oTree side")
    parser.add_argument(
        "--database", default="geppetto_bench",
        help="PostgreSQL database to drop and create (oTree's gets the suffix _otree)",
    )  # fmt: skip
    parser.add_argument("--redis-db", type=int, default=12, help="Redis database to flush and use")
    parser.add_argument(
        "--count-participants", type=int, default=5,
        help="participants of the pass that counts queries (0: no such pass)",
    )  # fmt: skip
    parser.add_argument("--otree-venv", type=Path, default=WORK / "otree-venv")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}; see its log in {WORK}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"server at {url} did not come up within {seconds} s")


def stop(process: subprocess.Popen) -> float:
    """Stop a server and its children; returns the CPU seconds they used."""
    os.killpg(process.pid, signal.SIGTERM)
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0
    return usage.ru_utime + usage.ru_stime


def group_cpu(pgid: int) -> float:
    """CPU seconds used so far by the live processes of a process group and their reaped
    children (a recycled worker's time moves to its parent's child time, so none is lost)."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        # After the command: state ppid pgrp … utime(11) stime(12) cutime(13) cstime(14).
        if int(fields[2]) == pgid:
            ticks += sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def settle(pgid: int, seconds: float = 30) -> float:
    """Wait until the server's processes are done starting (CPU idle for 1 s); their CPU."""
    deadline = time.monotonic() + seconds
    last = group_cpu(pgid)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = group_cpu(pgid)
        if now - last < 0.05:
            return now
        last = now
    return last


class StatementCounter:
    """A loopback TCP proxy to PostgreSQL that counts the statements clients send.

    It reads the frontend side of the wire protocol: after the untyped start-up messages
    (SSL/GSS requests, the startup packet), every message is a type byte and a length;
    each ``Q`` (simple query) and ``E`` (execute of the extended protocol) is one
    statement. The server side is passed through untouched.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 5432):
        self.target = (host, port)
        self.statements = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0)
        )
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    async def _connection(self, client_r, client_w) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(self._frontend(client_r, server_w), self._pipe(server_r, client_w))

    @staticmethod
    async def _pipe(reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _frontend(self, reader, writer) -> None:
        buffer, typed = bytearray(), False
        try:
            while data := await reader.read(65536):
                writer.write(data)
                buffer += data
                at = 0
                while True:
                    if not typed:
                        if len(buffer) - at < 8:
                            break
                        length = int.from_bytes(buffer[at : at + 4], "big")
                        if len(buffer) - at < length:
                            break
                        # 196608 is protocol 3.0's startup packet; typed messages follow.
                        typed = int.from_bytes(buffer[at + 4 : at + 8], "big") == 196608
                        at += length
                    else:
                        if len(buffer) - at < 5:
                            break
                        length = int.from_bytes(buffer[at + 1 : at + 5], "big")
                        if len(buffer) - at < 1 + length:
                            break
                        self.statements += buffer[at] in (0x51, 0x45)  # Q, E
                        at += 1 + length
                del buffer[:at]
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


def run_locust(user_class: str, host: str, link: str, args, spawn_rate: float) -> dict:
    """Run the simulated participants; returns what they recorded."""
    acks = WORK / f"{user_class}.json"
    env = dict(
        os.environ,
        BENCH_LINK=link,
        BENCH_ACKS=str(acks),
        BENCH_THINK=args.think,
        BENCH_PARTICIPANTS=str(args.participants),
        BENCH_FIRST_ID=str(getattr(args, "first_id", 1)),
    )
    command = [
        PY, "-m", "locust", "-f", str(ROOT / "benchmarks" / "locust_participants.py"),
        "--headless", "--only-summary", "--loglevel", "WARNING",
        "-u", str(args.participants), "-r", f"{spawn_rate:.4f}",
        "-t", f"{args.duration}s", "--stop-timeout", "30",
        "--host", host, user_class,
    ]  # fmt: skip
    print(f"  locust: {args.participants} participants, {spawn_rate:.2f}/s, {args.duration} s")
    with open(WORK / f"{user_class}-locust.log", "w") as log:
        subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    return json.loads(acks.read_text())


def serve_and_load(command, *, cwd, env, port, probe, label, user_class, link, args, spawn_rate):
    """Start a server on loopback, run the participants against it, stop it.

    Returns:
        What the participants recorded, and what the server used (CPU during the run and
        at start-up, statements sent to PostgreSQL during the run, seconds, load average).
    """
    counter = env.pop("_COUNTER", None)
    with open(WORK / f"{user_class}-server.log", "a") as log:
        server = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    host = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{host}{probe}", server)
        startup = settle(server.pid)
        print(f"{label} on {host}")
        statements = counter.statements if counter else 0
        load, began = os.getloadavg()[0], time.monotonic()
        acks = run_locust(user_class, host, link, args, spawn_rate)
        seconds = time.monotonic() - began
        used = {
            "cpu": group_cpu(server.pid) - startup,
            "startup": startup,
            "statements": counter.statements - statements if counter else 0,
            "seconds": seconds,
            "load": (load, os.getloadavg()[0]),
        }
    finally:
        stop(server)
    return acks, used


def count_queries(serve, args, counter: StatementCounter, database_url: str) -> float | None:
    """Queries per answer of ``--count-participants`` new participants, through the proxy."""
    if args.count_participants <= 0:
        return None
    quick = argparse.Namespace(**vars(args))
    quick.participants, quick.think = args.count_participants, "0,0"
    quick.duration, quick.first_id = 120, args.participants + 1
    acks, used = serve(args=quick, spawn_rate=quick.participants, database_url=database_url)
    answers = sum(len(a) for a in acks["acks"].values())
    print(f"  counted {used['statements']} queries for {answers} answers")
    return used["statements"] / max(answers, 1)


def compare(acks: dict, stored: dict) -> tuple[int, int]:
    """(acknowledged answers, of those missing or different in the database)."""
    total = lost = 0
    for pid, answers in acks["acks"].items():
        for item, answer in answers.items():
            total += 1
            lost += stored.get((pid, item)) != answer
    return total, lost


def geppetto_side(args, spawn_rate: float, counter: StatementCounter) -> dict:
    database = args.database
    recreate_database(database)
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=f"{PG}/{database}",
        CACHE_URL=f"redis://127.0.0.1:6379/{args.redis_db}",
        GEPPETTO_VAR_DIR=str(WORK / "geppetto-var"),
        GEPPETTO_RATE_LIMITS="start=100000",  # every simulated participant has one address
        SECRET_KEY=secrets.token_hex(32),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    import redis

    redis.Redis.from_url(env["CACHE_URL"]).flushdb()
    manage = [PY, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)
    task = ROOT / "benchmark" / "tasks" / "personality" / "ipip-big5-50.yaml"
    subprocess.run(
        [*manage, "load_tasks", str(task)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    make_study = (
        "from benchmark.models import TaskVersion; from participants.models import Study; "
        "v = TaskVersion.objects.get(task__slug='ipip-big5-50'); "
        "Study.objects.create(task_version=v, title='Load', slug='load', source='prolific', "
        "consent_markdown='Consent.', completion_code='C0DE', "
        f"target_n={args.participants + args.count_participants}, "
        "time_limit_minutes=60)"
    )
    subprocess.run([*manage, "shell", "-v", "0", "-c", make_study], env=env, check=True)
    command = [PY, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "config.wsgi"]

    def serve(*, args, spawn_rate, database_url=None):
        served = dict(env)
        if database_url:  # the server (only) reaches PostgreSQL through the counting proxy
            served.update(DATABASE_URL=database_url, _COUNTER=counter)
        return serve_and_load(
            command,
            cwd=ROOT,
            env=served,
            port=port,
            probe="/admin/login/",
            label=f"Geppetto: gunicorn, PostgreSQL database {database}",
            user_class="GeppettoParticipant",
            link="/s/load/",
            args=args,
            spawn_rate=spawn_rate,
        )

    acks, used = serve(args=args, spawn_rate=spawn_rate)
    dump = (
        "import json; from participants.models import Response, Session; "
        "print(json.dumps({'answers': [[r.session.recruitment_id, r.item_key, r.answer] "
        "for r in Response.objects.select_related('session')], "
        "'completed': Session.objects.filter(state='completed').count()}))"
    )
    out = subprocess.run(
        [*manage, "shell", "-v", "0", "-c", dump], env=env, check=True, capture_output=True
    )
    rows = json.loads(out.stdout)
    stored = {(pid, item): answer for pid, item, answer in rows["answers"]}
    result = summarise(acks, stored, rows["completed"], used)
    queries = count_queries(serve, args, counter, f"{counted(counter)}/{database}")
    return result | {"queries per answer (all requests)": queries}


OTREE_SETTINGS = """\
from os import environ

SESSION_CONFIGS = [dict(name="ipip", app_sequence=["ipip"], num_demo_participants=1)]
SESSION_CONFIG_DEFAULTS = dict(real_world_currency_per_point=1.0, participation_fee=0.0, doc="")
PARTICIPANT_FIELDS = []
SESSION_FIELDS = []
LANGUAGE_CODE = "en"
REAL_WORLD_CURRENCY_CODE = "USD"
USE_POINTS = True
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = environ.get("OTREE_ADMIN_PASSWORD")
SECRET_KEY = environ.get("OTREE_SECRET_KEY")
"""


def write_otree_project(path: Path) -> None:
    """The IPIP-50 questionnaire as an oTree app: consent, one page per item, end page."""
    app = path / "ipip"
    app.mkdir(parents=True, exist_ok=True)
    (path / "_static").mkdir(exist_ok=True)
    (path / "_templates").mkdir(exist_ok=True)
    (path / "settings.py").write_text(OTREE_SETTINGS)
    lines = [
        "from otree.api import *",
        "",
        "class C(BaseConstants):",
        "    NAME_IN_URL = 'ipip'",
        "    PLAYERS_PER_GROUP = None",
        "    NUM_ROUNDS = 1",
        "",
        "class Subsession(BaseSubsession):",
        "    pass",
        "",
        "class Group(BaseGroup):",
        "    pass",
        "",
        "class Player(BasePlayer):",
    ]
    for i in range(1, ITEMS + 1):
        lines.append(
            f"    q{i} = models.IntegerField(choices=[1, 2, 3, 4, 5], label='Item {i}', "
            "widget=widgets.RadioSelectHorizontal)"
        )
    lines += ["", "class Consent(Page):", "    template_name = 'ipip/Consent.html'", ""]
    for i in range(1, ITEMS + 1):
        lines += [
            f"class Q{i}(Page):",
            "    form_model = 'player'",
            f"    form_fields = ['q{i}']",
            "    template_name = 'ipip/Question.html'",
            "",
        ]
    pages = ", ".join(f"Q{i}" for i in range(1, ITEMS + 1))
    lines += ["class End(Page):", "    template_name = 'ipip/End.html'", ""]
    lines += [f"page_sequence = [Consent, {pages}, End]"]
    (app / "__init__.py").write_text("\n".join(lines) + "\n")
    block = "{{ block title }}%s{{ endblock }}\n{{ block content }}\n%s\n{{ endblock }}\n"
    (app / "Question.html").write_text(block % ("Question", "{{ formfields }}{{ next_button }}"))
    (app / "Consent.html").write_text(block % ("Consent", "<p>Consent.</p>{{ next_button }}"))
    (app / "End.html").write_text(block % ("Thanks", "<p>Done</p>"))


def otree_side(args, spawn_rate: float, counter: StatementCounter) -> dict:
    venv = args.otree_venv
    otree = venv / "bin" / "otree"
    if not otree.exists():
        print(f"oTree: installing otree=={OTREE_VERSION} into {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"otree=={OTREE_VERSION}",
             "psycopg2-binary==2.9.13"],
            check=True,
        )  # fmt: skip
    project = WORK / "otree-project"
    write_otree_project(project)
    database = f"{args.database}_otree"
    recreate_database(database)
    port = free_port()
    env = dict(
        os.environ,
        PATH=f"{venv / 'bin'}:{os.environ['PATH']}",
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{database}",
        OTREE_PRODUCTION="1",
        OTREE_ADMIN_PASSWORD=secrets.token_hex(8),
        OTREE_SECRET_KEY=secrets.token_hex(16),
    )
    quiet = {"cwd": project, "env": env, "check": True, "capture_output": True}
    subprocess.run([str(otree), "resetdb", "--noinput"], **quiet)
    places = str(args.participants + args.count_participants)
    subprocess.run([str(otree), "create_session", "ipip", places], **quiet)
    import psycopg

    with psycopg.connect(f"{PG}/{database}") as conn:
        code = conn.execute("SELECT _anonymous_code FROM otree_session").fetchone()[0]

    def serve(*, args, spawn_rate, database_url=None):
        served = dict(env)
        if database_url:  # the server (only) reaches PostgreSQL through the counting proxy
            served.update(DATABASE_URL=database_url, _COUNTER=counter)
        return serve_and_load(
            [str(otree), "prodserver", f"127.0.0.1:{port}"],
            cwd=project,
            env=served,
            port=port,
            probe="/",
            label=f"oTree {OTREE_VERSION}: prodserver, PostgreSQL database {database}",
            user_class="OTreeParticipant",
            link=f"/join/{code}",
            args=args,
            spawn_rate=spawn_rate,
        )

    acks, used = serve(args=args, spawn_rate=spawn_rate)
    columns = ", ".join(f"q{i}" for i in range(1, ITEMS + 1))
    with psycopg.connect(f"{PG}/{database}") as conn:
        rows = conn.execute(
            f"SELECT p.label, {columns} FROM ipip_player q "
            "JOIN otree_participant p ON p.id = q.participant_id WHERE p.label IS NOT NULL"
        ).fetchall()
        completed = conn.execute(
            "SELECT count(*) FROM otree_participant WHERE _current_page_name = 'End'"
        ).fetchone()[0]
    stored = {
        (row[0], f"q{i}"): str(value)
        for row in rows
        for i, value in enumerate(row[1:], start=1)
        if value is not None
    }
    result = summarise(acks, stored, completed, used)
    proxied = f"{counted(counter, 'postgresql')}/{database}?sslmode=disable"
    return result | {
        "queries per answer (all requests)": count_queries(serve, args, counter, proxied)
    }


def counted(counter: StatementCounter, scheme: str = "postgres") -> str:
    return f"{scheme}://postgres@127.0.0.1:{counter.port}"


def summarise(acks: dict, stored: dict, completed: int, used: dict) -> dict:
    for failure, count in sorted(acks["failures"].items()):
        print(f"  failed {count}×: {failure}")
    answer = np.array(acks["times"].get("answer", []), dtype=float)
    acknowledged, lost = compare(acks, stored)
    per_answer = max(acknowledged, 1)
    span = acks.get("span") or []
    return {
        "participants started": len(acks["acks"]),
        "participants finished": completed,
        "answers acknowledged": acknowledged,
        "answers lost (acknowledged, not stored)": lost,
        "answers given up on after retries": len(acks["unsaved"]),
        "failed requests (any page)": sum(acks["failures"].values()),
        # From the first stored answer to the last: locust's start and stop are left out.
        "answers per second": acknowledged / max(span[-1] - span[0], 1e-9) if span else 0.0,
        "answer save p50 (ms)": float(np.percentile(answer, 50)) if answer.size else None,
        "answer save p95 (ms)": float(np.percentile(answer, 95)) if answer.size else None,
        "answer save p99 (ms)": float(np.percentile(answer, 99)) if answer.size else None,
        "answer save max (ms)": float(answer.max()) if answer.size else None,
        "requests per answer": sum(acks["counts"].values()) / per_answer,
        "queries per answer (all requests)": None,  # from the counting pass
        "server CPU ms per answer": 1000 * used["cpu"] / per_answer,
        "server start-up CPU (s)": used["startup"],
        "load average at start / end": used["load"],
    }


def main():
    args = parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    low, high = (float(x) for x in args.think.split(","))
    one_participant = ITEMS * (low + high) / 2 + 5
    spread = args.duration - one_participant * 1.2
    if spread <= 0:
        raise SystemExit(
            f"--duration {args.duration} s is too short: one participant needs about "
            f"{one_participant:.0f} s with --think {args.think}"
        )
    spawn_rate = args.participants / (args.arrive or spread)
    counter = StatementCounter()
    results = {"Geppetto": geppetto_side(args, spawn_rate, counter)}
    if not args.no_otree:
        results["oTree"] = otree_side(args, spawn_rate, counter)
    print()
    print(
        f"{args.participants} participants × {ITEMS} answers, think {args.think} s, "
        f"{args.duration} s, {os.cpu_count()} cores (server, PostgreSQL and locust share them)"
    )
    names = list(results)
    header = f"{'':42}" + "".join(f"{n:>12}" for n in names)
    if "oTree" in results:
        header += f"{'oTree/ours':>12}"
    print(header)
    for metric in results["Geppetto"]:
        values = [results[n][metric] for n in names]
        line = f"{metric:42}" + "".join(cell(v) for v in values)
        ratio = "ms" in metric or "queries" in metric or "per second" in metric
        if len(values) == 2 and ratio and all(values):
            line += f"{values[1] / values[0]:11.2f}x"
        print(line)
    (WORK / "participants-results.json").write_text(json.dumps(results, indent=2))


def cell(value) -> str:
    if value is None:
        return f"{'-':>12}"
    if isinstance(value, tuple):
        return f"{' / '.join(f'{v:.1f}' for v in value):>12}"
    return f"{value:12.1f}" if isinstance(value, float) else f"{value:12d}"


if __name__ == "__main__":
    main()
