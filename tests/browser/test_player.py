"""A participant in a real browser: complete, go offline, reload, use a phone."""

import pytest
from playwright.sync_api import expect

from benchmark.rendering import environment_for
from benchmark.specs import spec_from_json
from participants.models import Flag, Response, Session
from tests.browser.conftest import BANDIT, CHOICE, QUESTIONNAIRE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def begin(page, url, study, shot=None, prefix="", query="pid=tester-1"):
    """Open the study link, agree and start; returns the session token."""
    page.goto(f"{url}/s/{study.slug}/?{query}")
    expect(page.locator("h1")).to_have_text("Consent")
    expect(page.locator(".consent-text strong")).to_have_text("voluntarily")
    if shot:
        shot(page, f"{prefix}-1-consent")
    page.click("#agree")
    expect(page.locator("h1")).to_have_text("Instructions")
    if shot:
        shot(page, f"{prefix}-2-instructions")
    page.click("#begin")
    expect(page.locator("#player")).to_have_attribute("data-state", "trial")
    return page.url.rstrip("/").split("/")[-1]


def answered(token):
    return dict(Response.objects.filter(session__token=token).values_list("item_key", "answer"))


def test_questionnaire_completed_with_the_keyboard(context, live_server, make_web_study, shot):
    study = make_web_study(QUESTIONNAIRE, "web-q")
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    token = begin(page, live_server.url, study, shot, "questionnaire")
    session = Session.objects.get(token=token)
    shot(page, "questionnaire-3-trial")
    expected = {}
    for n, key in enumerate(session.trial_order):
        expect(page.locator("#player")).to_have_attribute("data-item", key)
        expect(page.locator("#counter")).to_have_text(f"{n} / 6")
        if n == 0:  # Tab moves between options, Enter answers
            page.locator("#options button").first.focus()
            page.keyboard.press("Tab")
            page.keyboard.press("Enter")
            expected[key] = "2"
        elif n == 1:  # focus is on the new trial's first option
            expect(page.locator("#options button").first).to_be_focused()
            page.keyboard.press("Enter")
            expected[key] = "1"
        else:  # digit shortcuts
            page.keyboard.press(str(n % 5 + 1))
            expected[key] = str(n % 5 + 1)
    expect(page.locator("#code")).to_have_text("CODE42")
    shot(page, "questionnaire-4-done")
    assert answered(token) == expected
    session.refresh_from_db()
    assert session.state == "completed"
    rts = list(Response.objects.filter(session=session).values_list("rt_ms", flat=True))
    assert all(rt is not None and rt >= 0 for rt in rts)
    # Playwright's chromium reports navigator.webdriver and answers within milliseconds:
    # both are flagged for the researcher, and the session still counts as completed.
    kinds = set(Flag.objects.filter(session=session).values_list("kind", flat=True))
    assert {"webdriver", "too_fast"} <= kinds
    assert errors == []


def test_bandit_completed_with_server_feedback(context, live_server, make_web_study, shot):
    study = make_web_study(BANDIT, "web-bandit")
    page = context.new_page()
    token = begin(page, live_server.url, study)
    env = environment_for(spec_from_json(study.task_version.spec))
    choices = "FFJJJF"
    for n, choice in enumerate(choices):
        expect(page.locator("#player")).to_have_attribute("data-item", f"t{n + 1}")
        expect(page.locator("#context")).to_have_text(f"Block {n // 3 + 1} · Trial {n % 3 + 1}")
        page.click(f'#options button[data-key="{choice}"]')
        outcome = env.feedback(n, choice)
        expect(page.locator("#feedback")).to_have_text(
            f"You {outcome['outcome']}. Points: {outcome['reward']}"
        )
        if n == 1:
            shot(page, "bandit-feedback")
    expect(page.locator("#code")).to_have_text("CODE42")
    stored = Response.objects.filter(session__token=token).order_by("position")
    assert [(r.item_key, r.answer) for r in stored] == [
        (f"t{n + 1}", c) for n, c in enumerate(choices)
    ]
    assert [r.feedback for r in stored] == [env.feedback(n, c) for n, c in enumerate(choices)]


def test_offline_for_a_few_trials_loses_nothing(context, live_server, make_web_study, shot):
    study = make_web_study(QUESTIONNAIRE, "web-offline")
    page = context.new_page()
    token = begin(page, live_server.url, study)
    page.keyboard.press("2")
    expect(page.locator("#counter")).to_have_text("1 / 6")
    context.set_offline(True)
    for key in "345":
        page.keyboard.press(key)
    expect(page.locator("#status")).to_have_attribute("data-kind", "offline")
    expect(page.locator("#counter")).to_have_text("4 / 6")
    shot(page, "offline-queued")
    pending = page.evaluate(f"JSON.parse(localStorage.getItem('geppetto:{token}')).length")
    assert pending == 3
    assert len(answered(token)) == 1
    context.set_offline(False)
    page.keyboard.press("1")
    page.keyboard.press("1")
    expect(page.locator("#code")).to_have_text("CODE42")
    order = Session.objects.get(token=token).trial_order
    assert answered(token) == dict(zip(order, "234511", strict=True))


def test_reload_mid_task_resumes_and_sends_answers_kept_on_the_device(
    context, live_server, make_web_study
):
    study = make_web_study(BANDIT, "web-reload")
    page = context.new_page()
    token = begin(page, live_server.url, study)
    for choice in "FJ":
        page.click(f'#options button[data-key="{choice}"]')
        expect(page.locator("#feedback")).not_to_have_text("")
    expect(page.locator("#player")).to_have_attribute("data-item", "t3")
    page.reload()
    expect(page.locator("#player")).to_have_attribute("data-item", "t3")
    expect(page.locator("#counter")).to_have_text("2 / 6")

    # The server is unreachable for the third answer; a reload keeps it in localStorage and
    # sends it once the server answers again.
    page.route("**/answer", lambda route: route.abort())
    page.click('#options button[data-key="J"]')
    expect(page.locator("#status")).to_have_attribute("data-kind", "offline")
    kept = page.evaluate(f"JSON.parse(localStorage.getItem('geppetto:{token}'))")
    assert [(e["item_key"], e["answer"]) for e in kept] == [("t3", "J")]
    assert answered(token) == {"t1": "F", "t2": "J"}
    page.reload()
    page.unroute("**/answer")
    expect(page.locator("#player")).to_have_attribute("data-item", "t4")
    assert answered(token) == {"t1": "F", "t2": "J", "t3": "J"}
    for choice in "FFF":
        page.click(f'#options button[data-key="{choice}"]')
        expect(page.locator("#feedback")).not_to_have_text("")
    expect(page.locator("#code")).to_have_text("CODE42")
    assert list(
        Response.objects.filter(session__token=token)
        .order_by("position")
        .values_list("answer", flat=True)
    ) == list("FJJFFF")


def test_phone_viewport(chromium, live_server, make_web_study, shot):
    study = make_web_study(CHOICE, "web-phone")
    phone = chromium.new_context(
        viewport={"width": 375, "height": 667},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    try:
        page = phone.new_page()
        token = begin(page, live_server.url, study, shot, "phone")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        box = page.locator("#options button").first.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 120  # thumb-sized
        shot(page, "phone-3-trial")
        tops = []
        for n in range(3):
            expect(page.locator("#counter")).to_have_text(f"{n} / 3")
            tops.append(page.locator("#options").bounding_box()["y"])
            page.locator('#options button[data-key="B"]').tap()
        expect(page.locator("#code")).to_have_text("CODE42")
        # Reserved space keeps the answer buttons in place while the texts change.
        assert tops == [tops[0]] * 3
        shot(page, "phone-4-done")
        assert set(answered(token).values()) == {"B"} and len(answered(token)) == 3
    finally:
        phone.close()


def test_prolific_participant_is_sent_back_with_the_code(context, live_server, make_web_study):
    study = make_web_study(CHOICE, "web-prolific", source="prolific")
    context.route(
        "https://app.prolific.com/**",
        lambda route: route.fulfill(body="<h1>Prolific</h1>", content_type="text/html"),
    )
    page = context.new_page()
    token = begin(
        page,
        live_server.url,
        study,
        query="PROLIFIC_PID=5f3a5f3a5f3a5f3a5f3a5f3a&STUDY_ID=s1&SESSION_ID=x9",
    )
    for _ in range(3):
        page.click('#options button[data-key="A"]')
    expect(page.locator("#code")).to_have_text("CODE42")
    expect(page.locator("#redirect")).to_have_attribute(
        "href", "https://app.prolific.com/submissions/complete?cc=CODE42"
    )
    page.wait_for_url("https://app.prolific.com/submissions/complete?cc=CODE42", timeout=10000)
    session = Session.objects.get(token=token)
    assert (session.recruitment_id, session.state) == ("5f3a5f3a5f3a5f3a5f3a5f3a", "completed")
    assert session.recruitment == {
        "PROLIFIC_PID": "5f3a5f3a5f3a5f3a5f3a5f3a",
        "STUDY_ID": "s1",
        "SESSION_ID": "x9",
    }


def test_researcher_previews_the_bandit_without_creating_data(
    context, live_server, make_web_study, shot, django_user_model
):
    django_user_model.objects.create_superuser("lab", "lab@example.org", "pw-for-tests-2")
    study = make_web_study(BANDIT, "web-preview", source="sona")
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/participants/study/{study.pk}/change/")
    page.fill("#id_username", "lab")
    page.fill("#id_password", "pw-for-tests-2")
    page.click("input[type=submit]")
    expect(page.locator("#recruitment-url")).to_have_value(
        f"{live_server.url}/s/web-preview/?id=%SURVEY_CODE%"
    )
    shot(page, "admin-study")
    page.click("#preview-link")
    expect(page.locator(".preview-note")).to_contain_text("Nothing you answer here is stored.")
    env = environment_for(spec_from_json(study.task_version.spec))
    for n, choice in enumerate("JF"):
        page.click(f'#options button[data-key="{choice}"]')
        outcome = env.feedback(n, choice)
        expect(page.locator("#feedback")).to_have_text(
            f"You {outcome['outcome']}. Points: {outcome['reward']}"
        )
    shot(page, "admin-preview")
    assert Session.objects.count() == 0 and Response.objects.count() == 0
