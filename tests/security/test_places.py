"""Item 7: invented platform ids cannot fill a study."""

from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from participants import services
from participants.models import Session, SessionState
from participants.recruitment import RecruitmentError, parse_arrival

# The embedded mode stores answers in SQLite: these run there too.
pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

PID = "5f3a1b2c3d4e5f6a7b8c9d01"


@pytest.mark.parametrize(
    ("source", "query", "message"),
    [
        ("prolific", {"PROLIFIC_PID": "made-up-1"}, "PROLIFIC_PID is not a valid id (24 hex"),
        ("prolific", {"PROLIFIC_PID": PID + "0"}, "PROLIFIC_PID is not a valid id"),
        ("sona", {"id": "bob"}, "id is not a valid id (a number"),
        ("mturk", {"workerId": "W1", "assignmentId": "3A"}, "workerId is not a valid id (A foll"),
        (
            "mturk",
            {"workerId": "A1B2C3D4E5F6G7", "assignmentId": "3A", "turkSubmitTo": "https://evil.x"},
            "turkSubmitTo is not an MTurk address",
        ),
    ],
)
def test_ids_must_have_the_platforms_format(source, query, message):
    with pytest.raises(RecruitmentError, match=message.replace("(", r"\(")):
        parse_arrival(source, query)


def test_real_formats_pass():
    assert parse_arrival("prolific", {"PROLIFIC_PID": PID}).recruitment_id == PID
    assert parse_arrival("sona", {"id": "48213"}).recruitment_id == "48213"
    worker = {"workerId": "A2FGSJ18D8N7UA", "assignmentId": "3ABC", "hitId": "3XYZ"}
    assert parse_arrival("mturk", worker).recruitment_id == "A2FGSJ18D8N7UA"


def test_made_up_ids_on_the_link_are_refused_and_hold_nothing(q_version, make_study):
    study = make_study(q_version, target_n=2)
    client = Client()
    for n in range(5):
        page = client.get(f"/s/{study.slug}/", {"PROLIFIC_PID": f"fake{n}"})
        assert page.status_code == 400 and "PROLIFIC_PID is not a valid id" in page.content.decode()
    assert not Session.objects.exists()


@override_settings(CONSENT_HOLD_MINUTES=10)
def test_places_held_without_consent_are_released_after_the_hold(q_version, make_study):
    study = make_study(q_version, target_n=2)
    client = Client()
    tokens = []
    for n in range(2):
        pid = f"{n:024x}"
        page = client.get(f"/s/{study.slug}/", {"PROLIFIC_PID": pid})
        assert page.status_code == 302
        tokens.append(page["Location"].split("/")[3])
    full = client.get(f"/s/{study.slug}/", {"PROLIFIC_PID": "f" * 24})
    assert full.status_code == 409
    progress = services.study_progress(study=study)
    assert (progress["running"], progress["held_not_started"]) == (2, 2)
    # The first consents; the second never does.
    consented = Session.objects.get(token=tokens[0])
    services.give_consent(session=consented)
    Session.objects.update(started=timezone.now() - timedelta(minutes=11))
    progress = services.study_progress(study=study)
    assert (progress["running"], progress["held_not_started"], progress["timed_out"]) == (1, 1, 1)
    assert Session.objects.get(token=tokens[1]).state == SessionState.TIMED_OUT
    assert Session.objects.get(token=tokens[0]).state == SessionState.STARTED
    # The released place goes to the next participant.
    assert client.get(f"/s/{study.slug}/", {"PROLIFIC_PID": "f" * 24}).status_code == 302


@override_settings(CONSENT_HOLD_MINUTES=10)
def test_a_session_past_the_hold_cannot_consent_any_more(q_version, make_study):
    study = make_study(q_version)
    session, _ = services.start_session(
        study=study, arrival=parse_arrival("prolific", {"PROLIFIC_PID": PID})
    )
    Session.objects.filter(pk=session.pk).update(started=timezone.now() - timedelta(minutes=11))
    session.refresh_from_db()
    with pytest.raises(services.ParticipationError) as info:
        services.give_consent(session=session)
    assert info.value.code == SessionState.TIMED_OUT


def test_the_admin_shows_places_held_before_the_task(admin_client, q_version, make_study):
    study = make_study(q_version)
    for n in range(3):
        services.start_session(
            study=study, arrival=parse_arrival("prolific", {"PROLIFIC_PID": f"{n:024x}"})
        )
    page = admin_client.get(f"/admin/participants/study/{study.pk}/change/")
    assert '<td id="held-not-started">3</td>' in page.content.decode()
