"""Where one saved answer spends its CPU: the answer view in-process, on PostgreSQL.

Run (a database you can drop, e.g. your own):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/geppetto_prof \
    CACHE_URL=redis://127.0.0.1:6379/7 \
    .venv/bin/python benchmarks/profile_answers.py [--participants 20] [--profile 25] [--sql]

Simulated participants walk the IPIP-50 study through Django's test client with CSRF
checks on (start link, consent, instructions, the task page), then post their 50 answers
as the player does. Only the answer posts are measured: process CPU per answer, SQL
statements per answer (Django's query log) and, with ``--profile N``, the N functions
with the most cumulative time under cProfile. The client's own work (building the
request) is included, so the figure is an upper bound of the view's cost; the gunicorn
benchmark (bench_participants.py) measures the server from outside.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import re
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASK = ROOT / "benchmark" / "tasks" / "personality" / "ipip-big5-50.yaml"
CONFIG = re.compile(r'<script id="player-config" type="application/json">(.*?)</script>', re.S)
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    parser.add_argument("--sql", action="store_true", help="print the statements of one answer")
    return parser.parse_args()


def setup():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("GEPPETTO_RATE_LIMITS", "start=100000")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database (it is migrated)")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from benchmark.models import TaskVersion
    from benchmark.services.tasks import load_tasks

    if not TaskVersion.objects.filter(task__slug="ipip-big5-50").exists():
        load_tasks([TASK])


def walk_in(client, slug: str, number: int) -> tuple[dict, str]:
    """One participant up to the task page; returns the player config and the CSRF token."""
    pid = f"{number:024x}"
    start = client.get(f"/s/{slug}/?PROLIFIC_PID={pid}&STUDY_ID=p&SESSION_ID={uuid.uuid4().hex}")
    page = start.headers["Location"]
    csrf = CSRF_INPUT.search(client.get(page).content.decode()).group(1)
    for step in ("consent", "instructions"):
        client.post(f"{page}{step}", {"choice": "agree", "csrfmiddlewaretoken": csrf})
    config = json.loads(CONFIG.search(client.get(page).content.decode()).group(1))
    return config, csrf


def main():
    args = parse_args()
    setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from benchmark.models import TaskVersion
    from participants.models import Response, Study

    setup_test_environment()  # ALLOWED_HOSTS for the test client's "testserver"
    version = TaskVersion.objects.filter(task__slug="ipip-big5-50").latest("pk")
    slug = f"prof-{uuid.uuid4().hex[:8]}"
    study = Study.objects.create(
        task_version=version, title="Profile", slug=slug, source="prolific",
        consent_markdown="Consent.", completion_code="C0DE", target_n=10**6,
        time_limit_minutes=60,
    )  # fmt: skip
    participants = []
    # One handler for every client, as a server process has: middleware is built once.
    handler = Client(enforce_csrf_checks=True).handler
    walk_in(Client(enforce_csrf_checks=True), slug, 0)  # warm-up: middleware, plan cache
    walking_in = time.process_time()
    for number in range(1, args.participants + 1):
        client = Client(enforce_csrf_checks=True)
        client.handler = handler
        config, csrf = walk_in(client, slug, number)
        participants.append((client, config, csrf))
    walking_in = time.process_time() - walking_in
    posts = [
        (client, config["answerUrl"], key, random.choice(config["trials"][key]["options"]), csrf)
        for client, config, csrf in participants
        for key in config["order"]
    ]
    # CPU time, not wall time: waiting for PostgreSQL or Redis costs the server nothing.
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    statuses: dict[int, int] = {}
    with CaptureQueriesContext(connection) as queries:
        cpu = time.process_time()
        if profiler:
            profiler.enable()
        for client, url, key, choice, csrf in posts:
            body = {
                "item_key": key,
                "answer": choice["key"],
                "idempotency_key": uuid.uuid4().hex,
                "rt_ms": 1234.5,
                "client_ts": "2026-01-01T00:00:00Z",
                "telemetry": {"webdriver": False, "blur": 0, "paste": 0},
            }
            response = client.post(
                url, json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=csrf
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if profiler:
            profiler.disable()
        cpu = time.process_time() - cpu
    # Read now: the next request through the test client clears Django's query log.
    statements = [q["sql"] for q in queries.captured_queries]
    finishing = time.process_time()
    for client, config, csrf in participants:
        client.post(
            config["completeUrl"], "{}", content_type="application/json", HTTP_X_CSRFTOKEN=csrf
        )
        client.get(config["completeUrl"].removesuffix("complete"))
    finishing = time.process_time() - finishing
    stored = Response.objects.filter(session__study=study).count()
    n = len(posts)
    print(f"{n} answers, {args.participants} participants; statuses {statuses}; {stored} stored")
    print(f"CPU per answer: {1000 * cpu / n:.2f} ms (client included)")
    print(f"SQL statements per answer: {len(statements) / n:.2f}")
    per = 1000 / args.participants
    print(
        f"CPU per participant before the first answer (link, consent, instructions, 3 pages): "
        f"{walking_in * per:.1f} ms; after the last (complete, end page): {finishing * per:.1f} ms"
    )
    if args.sql:
        for sql in statements[-round(len(statements) / n) :]:
            print(f"  {sql[:300]}")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)


if __name__ == "__main__":
    main()
