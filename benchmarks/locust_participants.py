"""Locust users for bench_participants.py: one simulated participant each, full flow once.

Run by the benchmark, not by hand, naming the user class (``GeppettoParticipant`` or
``OTreeParticipant``) on locust's command line. Environment:
    BENCH_LINK: the study link (Geppetto: ``/s/<slug>/``; oTree: ``/join/<code>``).
    BENCH_ACKS: file to write the acknowledged answers to when the run stops.
    BENCH_THINK: ``min,max`` seconds a participant thinks before each answer.
    BENCH_PARTICIPANTS: how many participants; the run stops when the last one is done.
    BENCH_FIRST_ID: number of the first participant id (default 1), so that a second run
        against the same study brings new participants.

Both users behave like the real pages: an answer that fails (network, 5xx, 429) is sent
again with backoff, and an answer counts as acknowledged only when the server said it was
stored. The benchmark then compares the acknowledged answers with the database.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
import uuid

from locust import HttpUser, events, task
from locust.exception import StopUser

LINK = os.environ.get("BENCH_LINK", "")
ACKS_FILE = os.environ.get("BENCH_ACKS", "acks.json")
THINK = tuple(float(x) for x in os.environ.get("BENCH_THINK", "1,3").split(","))
PARTICIPANTS = int(os.environ.get("BENCH_PARTICIPANTS", "1"))
RETRIES = 6

_ids = itertools.count(int(os.environ.get("BENCH_FIRST_ID", "1")))
FIRST_ID = int(os.environ.get("BENCH_FIRST_ID", "1"))
acks: dict[str, dict[str, str]] = {}  # participant id -> item -> answer the server stored
unsaved: list[tuple[str, str]] = []  # answers still refused after every retry
finished: list[str] = []
done = 0  # participants who finished or gave up
times: dict[str, list[float]] = {}  # request name -> response times (ms) of successes
counts: dict[str, int] = {}  # request name -> requests sent
failures: dict[str, int] = {}  # "name: error" -> how often

CONFIG = re.compile(r'<script id="player-config" type="application/json">(.*?)</script>', re.S)
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


span: list[float] = []  # wall-clock time of the first and the last stored answer


@events.request.add_listener
def _record(name, response_time, exception, **_kwargs):
    counts[name] = counts.get(name, 0) + 1
    if exception is None:
        times.setdefault(name, []).append(response_time)
        if name == "answer":
            now = time.time()
            span[:] = [span[0] if span else now, now]
    else:
        failures[f"{name}: {exception}"] = failures.get(f"{name}: {exception}", 0) + 1


@events.test_stop.add_listener
def _write_acks(**_kwargs):
    with open(ACKS_FILE, "w") as fh:
        record = {"acks": acks, "unsaved": unsaved, "finished": finished}
        record |= {"times": times, "counts": counts, "failures": failures, "span": span}
        json.dump(record, fh)


class _Participant(HttpUser):
    abstract = True

    def new_participant(self) -> str:
        """A fresh participant id; a user started beyond the planned number just waits."""
        number = next(_ids)
        if number >= FIRST_ID + PARTICIPANTS:
            time.sleep(10**6)  # the run stops when the last participant is done
        return f"{number:024x}"  # the format of a Prolific id

    def leave(self):
        """This participant is done; the last one stops the run."""
        global done
        done += 1
        if done == PARTICIPANTS:
            self.environment.runner.quit()
        raise StopUser

    def think(self):
        time.sleep(random.uniform(*THINK))  # gevent makes this cooperative

    def send(self, name: str, method: str, url: str, ok, **kwargs) -> object | None:
        """Send until ``ok(response)`` (backoff 0.5 s, 1 s, …); None once retries run out."""
        for attempt in range(RETRIES):
            with self.client.request(
                method, url, name=name, catch_response=True, allow_redirects=False, **kwargs
            ) as response:
                if ok(response):
                    response.success()
                    return response
                response.failure(f"HTTP {response.status_code}")
            time.sleep(0.5 * 2**attempt)
        return None


class GeppettoParticipant(_Participant):
    """Prolific link → consent → instructions → 50 answers (JSON) → complete → end page."""

    @task
    def participate(self):
        pid = self.new_participant()
        start = self.send(
            "start",
            "GET",
            f"{LINK}?PROLIFIC_PID={pid}&STUDY_ID=bench&SESSION_ID={uuid.uuid4().hex}",
            lambda r: r.status_code == 302,
        )
        if start is None:
            self.leave()
        page = start.headers["Location"]
        consent = self.client.get(page, name="page")
        csrf = CSRF_INPUT.search(consent.text).group(1)
        for step in ("consent", "instructions"):
            self.send(
                step,
                "POST",
                f"{page}{step}",
                lambda r: r.status_code == 302,
                data={"choice": "agree", "csrfmiddlewaretoken": csrf},
            )
        config = json.loads(CONFIG.search(self.client.get(page, name="page").text).group(1))
        stored = acks.setdefault(pid, {})
        for key in config["order"]:
            self.think()
            choice = random.choice(config["trials"][key]["options"])["key"]
            body = {
                "item_key": key,
                "answer": choice,
                "idempotency_key": uuid.uuid4().hex,
                "rt_ms": 1234.5,
                "client_ts": "2026-01-01T00:00:00Z",
                "telemetry": {"webdriver": False, "blur": 0, "paste": 0},
            }
            saved = self.send(
                "answer",
                "POST",
                config["answerUrl"],
                lambda r: r.status_code in (200, 201) and r.json().get("saved") is True,
                data=json.dumps(body),
                headers={"Content-Type": "application/json", "X-CSRFToken": csrf},
            )
            if saved is None:
                unsaved.append((pid, key))
            else:
                stored[key] = saved.json()["answer"]
        done = self.send(
            "complete",
            "POST",
            config["completeUrl"],
            lambda r: r.status_code == 200,
            headers={"X-CSRFToken": csrf},
        )
        if done is not None and "completed the study" in self.client.get(page, name="page").text:
            finished.append(pid)
        self.leave()


class OTreeParticipant(_Participant):
    """Session-wide link with a label → consent page → 50 one-question pages → end page."""

    @task
    def participate(self):
        pid = self.new_participant()
        first = self.client.get(f"{LINK}?participant_label={pid}", name="start")
        consent = self.send("consent", "POST", first.url, lambda r: r.status_code == 302)
        if consent is None:
            self.leave()
        url = consent.headers["Location"]
        stored = acks.setdefault(pid, {})
        for _ in range(50):
            page = self.client.get(url, name="page")
            self.think()
            field = re.search(r'name="(q\d+)"', page.text).group(1)
            choice = str(random.randint(1, 5))
            saved = self.send(
                "answer",
                "POST",
                url,
                lambda r: r.status_code == 302 and "/ipip/" in r.headers.get("Location", ""),
                data={field: choice},
            )
            if saved is None:
                unsaved.append((pid, field))
                self.leave()
            stored[field] = choice
            url = saved.headers["Location"]
        if "Done" in self.client.get(url, name="page").text:
            finished.append(pid)
        self.leave()
