import hashlib
import json
import re

import pytest
from django.core.cache import cache
from django.test import Client

from benchmark.models import HumanDataset
from participants.models import Response, Session, SessionState, Study, Withdrawal
from participants.security import CONTENT_SECURITY_POLICY


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def browser():
    return Client(enforce_csrf_checks=True)


def csrf(client):
    return client.cookies["csrftoken"].value


def post_form(client, url, data):
    return client.post(url, {**data, "csrfmiddlewaretoken": csrf(client)})


def post_json(client, url, body, with_csrf=True):
    headers = {"HTTP_X_CSRFTOKEN": csrf(client)} if with_csrf else {}
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def prolific_id(name: str) -> str:
    """A Prolific-format id (24 hexadecimal characters) standing for ``name``."""
    return hashlib.sha256(name.encode()).hexdigest()[:24]


def arrive(client, study, pid="PID1"):
    response = client.get(
        f"/s/{study.slug}/", {"PROLIFIC_PID": prolific_id(pid), "STUDY_ID": "S", "SESSION_ID": "X"}
    )
    assert response.status_code == 302
    token = response["Location"].split("/")[3]
    return token, client.get(response["Location"])


def to_task(client, study, pid="PID1"):
    token, _page = arrive(client, study, pid)
    post_form(client, f"/s/p/{token}/consent", {"choice": "agree"})
    post_form(client, f"/s/p/{token}/instructions", {})
    return token, client.get(f"/s/p/{token}/")


def config_of(page):
    match = re.search(
        r'<script id="player-config" type="application/json">(.*?)</script>', page.content.decode()
    )
    return json.loads(match.group(1))


def test_full_questionnaire_flow_with_csrf_and_csp(browser, q_version, make_study):
    study = make_study(q_version)
    token, consent = arrive(browser, study)
    html = consent.content.decode()
    assert consent["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert (
        "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
    )
    assert "<strong>voluntarily</strong>" in html and "&lt;b&gt;No&lt;/b&gt; risks" in html
    assert (
        "<script>" not in html and " style=" not in html and "http" not in html.split("<body>")[1]
    )
    assert Session.objects.get().recruitment == {
        "PROLIFIC_PID": prolific_id("PID1"),
        "STUDY_ID": "S",
        "SESSION_ID": "X",
    }
    # A POST without the CSRF token is refused and changes nothing.
    assert browser.post(f"/s/p/{token}/consent", {"choice": "agree"}).status_code == 403
    assert Session.objects.get().consented is None
    post_form(browser, f"/s/p/{token}/consent", {"choice": "agree"})
    instructions = browser.get(f"/s/p/{token}/")
    assert "Rate each statement from 1 to 5." in instructions.content.decode()
    post_form(browser, f"/s/p/{token}/instructions", {})
    task = browser.get(f"/s/p/{token}/")
    config = config_of(task)
    assert (
        config["kind"] == "questionnaire" and config["order"] == Session.objects.get().trial_order
    )
    assert config["trials"]["q1"]["options"][0] == {"key": "1", "label": "Disagree"}
    assert 'src="/static/participants/player.js"' in task.content.decode()
    answers = {"q1": "5", "q2": "1", "q3": "4"}
    for key in config["order"]:
        body = {
            "item_key": key,
            "answer": answers[key],
            "idempotency_key": f"id-{key}",
            "rt_ms": 1234.5,
        }
        assert post_json(browser, f"/s/p/{token}/answer", body, with_csrf=False).status_code == 403
        saved = post_json(browser, f"/s/p/{token}/answer", body)
        assert saved.status_code == 201 and saved.json()["saved"] is True
        repeat = post_json(browser, f"/s/p/{token}/answer", body)
        assert repeat.status_code == 200
    assert dict(Response.objects.values_list("item_key", "answer")) == answers
    done = post_json(browser, f"/s/p/{token}/complete", {})
    assert done.json() == {"next": f"/s/p/{token}/"}
    end = browser.get(f"/s/p/{token}/")
    text = end.content.decode()
    assert "DONE123" in text
    assert 'href="https://app.prolific.com/submissions/complete?cc=DONE123"' in text
    assert end["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert Session.objects.get().state == SessionState.COMPLETED
    # Withdrawal stays possible after completion.
    assert f'href="/s/p/{token}/withdraw"' in text
    post_form(browser, f"/s/p/{token}/withdraw", {})
    assert Session.objects.count() == 0
    assert Withdrawal.objects.get().state_before == "completed"


def test_reload_and_another_device_resume_with_the_same_order(q_version, make_study):
    study = make_study(q_version)
    first = Client(enforce_csrf_checks=True)
    token, page = to_task(first, study)
    order = config_of(page)["order"]
    post_json(
        first, f"/s/p/{token}/answer", {"item_key": order[0], "answer": "3", "idempotency_key": "a"}
    )
    other = Client(enforce_csrf_checks=True)
    token2, resumed = arrive(other, study)
    assert token2 == token
    config = config_of(resumed)
    assert config["order"] == order and config["answered"] == {order[0]: {}}


def test_bandit_feedback_is_returned_by_the_server(bandit_version, make_study, browser):
    study = make_study(bandit_version)
    token, page = to_task(browser, study)
    config = config_of(page)
    assert config["trials"]["t4"]["fields"] == {"block": 2, "trial": 1}
    bad = post_json(
        browser, f"/s/p/{token}/answer", {"item_key": "t2", "answer": "F", "idempotency_key": "z"}
    )
    assert bad.status_code == 409 and bad.json()["error"] == "out_of_order"
    feedback = post_json(
        browser,
        f"/s/p/{token}/answer",
        {"item_key": "t1", "answer": "F", "idempotency_key": "y", "reward": 99},
    ).json()["feedback"]
    assert feedback == Response.objects.get().feedback and feedback["reward"] in (0, 1)
    resumed = config_of(browser.get(f"/s/p/{token}/"))
    assert resumed["answered"] == {"t1": feedback}


def test_answer_errors_are_json(q_version, make_study, browser):
    study = make_study(q_version)
    token, _ = to_task(browser, study)
    bad = post_json(
        browser, f"/s/p/{token}/answer", {"item_key": "q1", "answer": "7", "idempotency_key": "k"}
    )
    assert bad.status_code == 400 and bad.json()["error"] == "bad_answer"
    raw = browser.post(
        f"/s/p/{token}/answer",
        "[1]",
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf(browser),
    )
    assert raw.status_code == 400
    incomplete = post_json(browser, f"/s/p/{token}/complete", {})
    assert incomplete.status_code == 409 and incomplete.json()["error"] == "incomplete"
    assert browser.get("/s/p/not-a-token/").status_code == 404
    assert Response.objects.count() == 0


def test_timed_out_session_answers_410_and_shows_the_end(q_version, make_study, browser):
    study = make_study(q_version, time_limit_minutes=1)
    token, _ = to_task(browser, study)
    from datetime import timedelta

    from django.utils import timezone

    Session.objects.update(deadline=timezone.now() - timedelta(seconds=1))
    late = post_json(
        browser, f"/s/p/{token}/answer", {"item_key": "q1", "answer": "1", "idempotency_key": "k"}
    )
    assert late.status_code == 410 and late.json()["error"] == "timed_out"
    assert (
        "The time limit for this study has passed."
        in browser.get(f"/s/p/{token}/").content.decode()
    )


def test_decline_shows_the_screenout_code(q_version, make_study, browser):
    study = make_study(q_version)
    token, _ = arrive(browser, study)
    post_form(browser, f"/s/p/{token}/consent", {"choice": "decline"})
    page = browser.get(f"/s/p/{token}/").content.decode()
    assert "SCREEN9" in page and "cc=SCREEN9" in page
    assert Session.objects.get().state == SessionState.SCREENED_OUT


def test_demographics_form(q_version, make_study, browser):
    study = make_study(q_version, ask_demographics=True)
    token, _ = arrive(browser, study)
    post_form(browser, f"/s/p/{token}/consent", {"choice": "agree"})
    assert 'name="age"' in browser.get(f"/s/p/{token}/").content.decode()
    invalid = post_form(browser, f"/s/p/{token}/demographics", {"age": "7"})
    assert invalid.status_code == 400
    post_form(
        browser, f"/s/p/{token}/demographics", {"age": "29", "gender": "male", "education": ""}
    )
    assert Session.objects.get().demographics == {"age": 29, "gender": "male"}
    assert "Instructions" in browser.get(f"/s/p/{token}/").content.decode()


def test_withdraw_from_the_page(q_version, make_study, browser):
    study = make_study(q_version)
    token, _ = to_task(browser, study)
    post_json(
        browser, f"/s/p/{token}/answer", {"item_key": "q1", "answer": "1", "idempotency_key": "k"}
    )
    assert "Delete my answers" in browser.get(f"/s/p/{token}/withdraw").content.decode()
    gone = post_form(browser, f"/s/p/{token}/withdraw", {})
    assert "You have withdrawn." in gone.content.decode()
    assert Session.objects.count() == 0 and Response.objects.count() == 0
    assert Withdrawal.objects.get().responses_deleted == 1
    assert browser.get(f"/s/p/{token}/").status_code == 404


def test_bad_links_and_closed_studies(q_version, make_study, client):
    study = make_study(q_version, target_n=1)
    missing = client.get(f"/s/{study.slug}/")
    assert missing.status_code == 400 and "no PROLIFIC_PID" in missing.content.decode()
    assert client.get("/s/no-such-study/").status_code == 404
    arrive(client, study, "a")
    full = client.get(f"/s/{study.slug}/", {"PROLIFIC_PID": prolific_id("b")})
    assert full.status_code == 409 and "all the participants" in full.content.decode()
    Study.objects.update(status="closed")
    assert client.get(f"/s/{study.slug}/", {"PROLIFIC_PID": prolific_id("c")}).status_code == 403
    assert Session.objects.count() == 1


def test_start_is_rate_limited_per_ip(q_version, make_study, monkeypatch):
    monkeypatch.setattr("participants.security._clock", lambda: 1_000_000.0)
    study = make_study(q_version, source="open", target_n=1000)
    codes = [Client().get(f"/s/{study.slug}/").status_code for _ in range(62)]
    assert codes[:60] == [302] * 60 and codes[60:] == [429, 429]
    assert Session.objects.count() == 60


def test_rate_limits_can_be_raised_per_scope(q_version, make_study, monkeypatch, settings):
    settings.PARTICIPANT_RATE_LIMITS = {"start": 3}
    monkeypatch.setattr("participants.security._clock", lambda: 2_000_000.0)
    study = make_study(q_version, source="open", target_n=1000)
    codes = [Client().get(f"/s/{study.slug}/").status_code for _ in range(4)]
    assert codes == [302, 302, 302, 429]
    assert Session.objects.count() == 3


def test_answers_are_rate_limited_per_session(q_version, make_study, browser, monkeypatch):
    study = make_study(q_version)
    token, _ = to_task(browser, study)
    body = {"item_key": "q1", "answer": "1", "idempotency_key": "same"}
    monkeypatch.setattr("participants.security._clock", lambda: 1_000_000.0)
    codes = {post_json(browser, f"/s/p/{token}/answer", body).status_code for _ in range(240)}
    assert codes == {201, 200}
    limited = post_json(browser, f"/s/p/{token}/answer", body)
    assert limited.status_code == 429 and limited["Retry-After"] == "60"
    assert Response.objects.count() == 1


def test_preview_needs_staff_and_stores_nothing(bandit_version, make_study, admin_client):
    study = make_study(bandit_version)
    assert Client().get(f"/s/preview/{study.pk}/").status_code == 302  # to the admin login
    page = admin_client.get(f"/s/preview/{study.pk}/")
    assert page["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    config = config_of(page)
    assert config["preview"] is True and config["order"][0] == "t1"
    fb = admin_client.post(
        config["answerUrl"],
        json.dumps({"item_key": "t1", "answer": "J"}),
        content_type="application/json",
    )
    assert set(fb.json()["feedback"]) == {"reward", "outcome"}
    assert Session.objects.count() == 0 and Response.objects.count() == 0


def test_admin_study_page_shows_link_progress_and_exports(
    q_version, make_study, admin_client, browser
):
    study = make_study(q_version)
    token, page = to_task(browser, study)
    for key in config_of(page)["order"]:
        post_json(
            browser,
            f"/s/p/{token}/answer",
            {"item_key": key, "answer": "4", "idempotency_key": key},
        )
    post_json(browser, f"/s/p/{token}/complete", {})
    html = admin_client.get(f"/admin/participants/study/{study.pk}/change/").content.decode()
    assert (
        'value="http://testserver/s/s-part-q/?PROLIFIC_PID={{%PROLIFIC_PID%}}&amp;STUDY_ID={{%STUDY_ID%}}'
        '&amp;SESSION_ID={{%SESSION_ID%}}"' in html
    )
    # started, running, places held before the task, completed
    assert re.search(r'<td>1</td><td>0</td><td id="held-not-started">0</td><td>1</td>', html)
    csv_text = admin_client.get(
        f"/admin/participants/study/{study.pk}/export/csv/"
    ).content.decode()
    assert csv_text.splitlines()[0].startswith(
        "participant,condition,state,position,item_key,answer"
    )
    assert len(csv_text.splitlines()) == 4
    jsonl = admin_client.get(f"/admin/participants/study/{study.pk}/export/psych201/")
    assert jsonl["Content-Disposition"] == 'attachment; filename="s-part-q.jsonl"'
    assert json.loads(jsonl.content)["text"].count("<<4>>") == 3
    made = admin_client.post(f"/admin/participants/study/{study.pk}/make-dataset/")
    assert made.status_code == 302
    dataset = HumanDataset.objects.get()
    assert dataset.source == "collected" and dataset.n_participants == 1
    assert (
        admin_client.get(f"/admin/participants/study/{study.pk}/make-dataset/").status_code == 405
    )
    listing = admin_client.get("/admin/participants/study/").content.decode()
    assert "1/10 completed, 0 running (0 not at the task yet)" in listing
    session_page = admin_client.get(
        f"/admin/participants/session/{Session.objects.get().pk}/change/"
    )
    assert (
        session_page.status_code == 200 and "attention" not in session_page.content.decode().lower()
    )


def test_open_link_resumes_in_the_same_browser_only(q_version, make_study, client):
    study = make_study(q_version, source="open")
    first = client.get(f"/s/{study.slug}/")
    again = client.get(f"/s/{study.slug}/")
    assert first["Location"] == again["Location"]
    assert Session.objects.count() == 1
    assert Session.objects.get().recruitment_id.startswith("anon-")
    cookie = client.cookies[f"geppetto-{study.slug}"]
    assert cookie["httponly"] and cookie.value != Session.objects.get().token  # signed
    other = Client().get(f"/s/{study.slug}/")
    assert other["Location"] != first["Location"] and Session.objects.count() == 2


def test_full_demographic_cell_shows_the_screenout_page(q_version, make_study, browser):
    study = make_study(q_version, ask_demographics=True, quotas={"education=master": 0})
    token, _ = arrive(browser, study)
    post_form(browser, f"/s/p/{token}/consent", {"choice": "agree"})
    post_form(browser, f"/s/p/{token}/demographics", {"education": "master"})
    page = browser.get(f"/s/p/{token}/").content.decode()
    assert "enough participants like you" in page and "cc=SCREEN9" in page
    assert Session.objects.get().state == SessionState.SCREENED_OUT
