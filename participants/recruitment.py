"""Recruitment platforms: the URL a researcher pastes, the ids it brings, where it ends.

Pure functions of a study's settings and the request's query parameters, so each
platform's contract is tested without a browser.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from participants.models import RecruitmentSource

PROLIFIC_COMPLETE = "https://app.prolific.com/submissions/complete?cc={code}"
MTURK_SUBMIT = {
    False: "https://www.mturk.com/mturk/externalSubmit",
    True: "https://workersandbox.mturk.com/mturk/externalSubmit",
}
# Platform ids are short tokens; anything else is refused rather than stored.
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:@-]{1,200}$")
# Each platform's own id format, so invented ids cannot take a study's places. Prolific
# ids are 24 hexadecimal characters; SONA survey codes are numbers; MTurk worker ids are
# upper-case letters and digits starting with A.
PARAM_PATTERNS = {
    "PROLIFIC_PID": (re.compile(r"^[0-9a-fA-F]{24}$"), "24 hexadecimal characters"),
    "id": (re.compile(r"^[0-9]{1,12}$"), "a number"),
    "workerId": (re.compile(r"^A[A-Z0-9]{9,29}$"), "A followed by 9-29 capitals and digits"),
}
MTURK_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")

# Query parameters each platform appends, and which of them identifies the participant.
PARAMS = {
    RecruitmentSource.PROLIFIC: ("PROLIFIC_PID", ["PROLIFIC_PID", "STUDY_ID", "SESSION_ID"]),
    RecruitmentSource.SONA: ("id", ["id"]),
    RecruitmentSource.MTURK: ("workerId", ["workerId", "assignmentId", "hitId", "turkSubmitTo"]),
    RecruitmentSource.OPEN: ("pid", ["pid"]),
}
# What each platform substitutes into the study URL (shown to the researcher).
TEMPLATES = {
    RecruitmentSource.PROLIFIC: "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}"
    "&SESSION_ID={{%SESSION_ID%}}",
    RecruitmentSource.SONA: "id=%SURVEY_CODE%",
    RecruitmentSource.MTURK: "",
    RecruitmentSource.OPEN: "",
}


class RecruitmentError(ValueError):
    """The link lacks the platform's participant id, or carries a malformed one."""


@dataclass(frozen=True)
class Arrival:
    """Who arrived: the participant's id on the platform and the platform's other params."""

    recruitment_id: str
    params: dict = field(default_factory=dict)
    generated: bool = False


def recruitment_url(study, base_url: str) -> str:
    """The exact URL to paste into the study's platform.

    Args:
        study: the study.
        base_url: scheme and host of this server, e.g. ``https://lab.example.org``.

    Returns:
        The study link with the platform's placeholders (Prolific ``{{%PROLIFIC_PID%}}``,
        SONA ``%SURVEY_CODE%``); MTurk appends its parameters itself to an ExternalQuestion
        URL and the open link needs none.
    """
    url = f"{base_url.rstrip('/')}/s/{study.slug}/"
    query = TEMPLATES[study.source]
    return f"{url}?{query}" if query else url


def parse_arrival(source: str, query: dict) -> Arrival:
    """Read the participant id and platform parameters from a study link's query string.

    Args:
        source: a `RecruitmentSource` value.
        query: the request's query parameters (first value of each).

    Returns:
        The arrival; an open link without ``pid`` gets a fresh anonymous id.

    Raises:
        RecruitmentError: the platform's id parameter is missing or malformed (an MTurk
            preview, ``assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE``, counts as missing).
    """
    id_param, names = PARAMS[source]
    params = {name: query[name] for name in names if query.get(name)}
    for name, value in params.items():
        if name == "turkSubmitTo":
            if value.rstrip("/") not in MTURK_HOSTS:
                raise RecruitmentError("turkSubmitTo is not an MTurk address")
            continue
        if not ID_PATTERN.match(value):
            raise RecruitmentError(f"{name} is not a valid id")
        if source != RecruitmentSource.OPEN and name in PARAM_PATTERNS:
            pattern, expected = PARAM_PATTERNS[name]
            if not pattern.match(value):
                raise RecruitmentError(f"{name} is not a valid id ({expected} expected)")
    if source == RecruitmentSource.MTURK and (
        params.get("assignmentId", "ASSIGNMENT_ID_NOT_AVAILABLE") == "ASSIGNMENT_ID_NOT_AVAILABLE"
    ):
        raise RecruitmentError("accept the HIT on MTurk first, then start the study")
    if source == RecruitmentSource.OPEN and not params.get("pid"):
        return Arrival(recruitment_id=f"anon-{secrets.token_hex(8)}", params={}, generated=True)
    if not params.get(id_param):
        raise RecruitmentError(f"the link has no {id_param}; please use the link from the platform")
    return Arrival(recruitment_id=params[id_param], params=params)


def completion_url(study, session, *, screened_out: bool = False) -> str:
    """Where a participant goes when the study is over for them, or "" to stay on our page.

    Args:
        study: the study.
        session: the participant's session (its recruitment params fill SONA/MTurk URLs).
        screened_out: send the screen-out code instead of the completion code.

    Returns:
        Prolific: its completion URL with the code; SONA: the credit URL with the id;
        MTurk: the externalSubmit URL with the assignment id; open links: "".
    """
    code = study.screenout_code if screened_out else study.completion_code
    params = session.recruitment or {}
    if study.source == RecruitmentSource.PROLIFIC:
        return PROLIFIC_COMPLETE.format(code=quote(code, safe=""))
    if study.source == RecruitmentSource.SONA:
        # Only a web address: a javascript: or data: URL would run in our page.
        if not study.sona_credit_url.lower().startswith(("https://", "http://")) or screened_out:
            return ""
        return study.sona_credit_url.replace("{id}", quote(session.recruitment_id, safe=""))
    if study.source == RecruitmentSource.MTURK:
        sandbox = "sandbox" in params.get("turkSubmitTo", "")
        query = urlencode({"assignmentId": params.get("assignmentId", ""), "code": code})
        return f"{MTURK_SUBMIT[sandbox]}?{query}"
    return ""
