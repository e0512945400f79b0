import pytest

from participants.models import RecruitmentSource, Session, Study
from participants.recruitment import (
    RecruitmentError,
    completion_url,
    parse_arrival,
    recruitment_url,
)


def study(**kwargs):
    fields = {"slug": "mood", "completion_code": "C0DE", "screenout_code": "NOPE"}
    fields.update(kwargs)
    return Study(**fields)


def test_prolific_link_and_arrival_and_redirect():
    s = study(source=RecruitmentSource.PROLIFIC)
    assert recruitment_url(s, "https://lab.example.org/") == (
        "https://lab.example.org/s/mood/?PROLIFIC_PID={{%PROLIFIC_PID%}}"
        "&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
    )
    arrival = parse_arrival(
        "prolific", {"PROLIFIC_PID": "5f3a" * 6, "STUDY_ID": "st1", "SESSION_ID": "se1", "x": "y"}
    )
    assert arrival.recruitment_id == "5f3a" * 6
    assert arrival.params == {"PROLIFIC_PID": "5f3a" * 6, "STUDY_ID": "st1", "SESSION_ID": "se1"}
    session = Session(recruitment_id="5f3a" * 6, recruitment=arrival.params)
    assert completion_url(s, session) == "https://app.prolific.com/submissions/complete?cc=C0DE"
    assert completion_url(s, session, screened_out=True).endswith("?cc=NOPE")


def test_sona_credit_url_gets_the_participant_id():
    s = study(
        source=RecruitmentSource.SONA,
        sona_credit_url="https://u.sona-systems.com/webstudy_credit.aspx?experiment_id=7"
        "&credit_token=abc&survey_code={id}",
    )
    assert recruitment_url(s, "https://lab.example.org") == (
        "https://lab.example.org/s/mood/?id=%SURVEY_CODE%"
    )
    arrival = parse_arrival("sona", {"id": "12345"})
    assert arrival.recruitment_id == "12345"
    session = Session(recruitment_id="12345", recruitment=arrival.params)
    assert completion_url(s, session) == (
        "https://u.sona-systems.com/webstudy_credit.aspx?experiment_id=7"
        "&credit_token=abc&survey_code=12345"
    )
    assert completion_url(s, session, screened_out=True) == ""


def test_mturk_needs_an_accepted_assignment_and_submits_back():
    s = study(source=RecruitmentSource.MTURK)
    assert recruitment_url(s, "https://lab.example.org") == "https://lab.example.org/s/mood/"
    with pytest.raises(RecruitmentError, match="accept the HIT"):
        parse_arrival(
            "mturk",
            {
                "workerId": "A1B2C3D4E5F6G7",
                "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE",
                "hitId": "H",
            },
        )
    query = {
        "workerId": "A1B2C3D4E5F6G7",
        "assignmentId": "AS9",
        "hitId": "H7",
        "turkSubmitTo": "https://workersandbox.mturk.com",
    }
    arrival = parse_arrival("mturk", query)
    assert arrival.recruitment_id == "A1B2C3D4E5F6G7"
    session = Session(recruitment_id="A1B2C3D4E5F6G7", recruitment=arrival.params)
    assert completion_url(s, session) == (
        "https://workersandbox.mturk.com/mturk/externalSubmit?assignmentId=AS9&code=C0DE"
    )


def test_open_link_generates_an_anonymous_id_or_keeps_a_given_one():
    s = study(source=RecruitmentSource.OPEN)
    assert recruitment_url(s, "http://127.0.0.1:8000") == "http://127.0.0.1:8000/s/mood/"
    a, b = parse_arrival("open", {}), parse_arrival("open", {})
    assert a.generated and a.recruitment_id.startswith("anon-")
    assert a.recruitment_id != b.recruitment_id
    assert parse_arrival("open", {"pid": "me-1"}).recruitment_id == "me-1"
    assert completion_url(s, Session(recruitment_id="me-1")) == ""


@pytest.mark.parametrize(
    ("source", "query", "message"),
    [
        ("prolific", {"STUDY_ID": "x"}, "no PROLIFIC_PID"),
        ("sona", {}, "no id"),
        ("prolific", {"PROLIFIC_PID": "<script>"}, "PROLIFIC_PID is not a valid id"),
        ("mturk", {"workerId": "A1B2C3D4E5F6G7"}, "accept the HIT"),
    ],
)
def test_bad_links_are_refused_with_a_reason(source, query, message):
    with pytest.raises(RecruitmentError, match=message):
        parse_arrival(source, query)
