"""The task player: study link → consent → demographics → instructions → trials → end.

Every participant URL carries the session's opaque token; the views are thin and call
`participants.services`. Answers arrive one by one as JSON POSTs (with the CSRF header)
from ``player.js``.
"""

from __future__ import annotations

import contextlib
import json
import re

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST, require_safe

from participants import services
from participants.answers import BadAnswer, parse_answer
from participants.forms import DemographicsForm
from participants.markdown import render_markdown
from participants.models import Session, SessionState, Study, StudyStatus
from participants.queries import session_by_token
from participants.recruitment import RecruitmentError, completion_url, parse_arrival
from participants.security import client_ip, rate_limit, strict_csp

ENDED = {
    SessionState.COMPLETED: "Thank you — you have completed the study.",
    SessionState.TIMED_OUT: "The time limit for this study has passed.",
    SessionState.RETURNED: "You have returned this study.",
    SessionState.SCREENED_OUT: "You did not consent, so the study ends here. Thank you.",
}
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
QUOTA_FULL = "Thank you. We already have enough participants like you, so the study ends here."


def _session(token: str) -> Session:
    # Tokens are URL-safe base64; anything else (a NUL, which PostgreSQL refuses in a
    # query) cannot be one.
    if not TOKEN_PATTERN.fullmatch(token):
        raise Http404("No such session.")
    session = session_by_token(token)
    if session is None:
        raise Http404("No such session.")
    return services.expire_if_overdue(session=session)


def _problem(request, message: str, status: int = 400):
    return render(request, "participants/message.html", {"message": message}, status=status)


@strict_csp
@rate_limit("start", limit=60)
@require_safe
def start(request, slug: str):
    """A study link: find or start this recruitment id's session, then go to its page."""
    # The spec is read once per process by `plan_for` (the trial order needs the plan).
    studies = Study.objects.select_related("task_version").defer("task_version__spec")
    study = get_object_or_404(studies, slug=slug)
    if request.method == "HEAD":
        # Link checkers and chat previews: the link works, and no place is taken.
        return HttpResponse(status=200)
    cookie = f"geppetto-{study.slug}"
    try:
        arrival = parse_arrival(study.source, request.GET.dict())
        if arrival.generated:
            # An anonymous participant opening the open link again resumes in this browser.
            token = request.get_signed_cookie(cookie, default=None, salt="participants")
            if token and Session.objects.filter(study=study, token=token).exists():
                return redirect("participants:page", token=token)
        session, _ = services.start_session(
            study=study,
            arrival=arrival,
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
    except RecruitmentError as exc:
        return _problem(request, str(exc))
    except services.ParticipationError as exc:
        return _problem(request, str(exc), status=409 if exc.code == "full" else 403)
    response = redirect("participants:page", token=session.token)
    if arrival.generated:
        response.set_signed_cookie(
            cookie,
            session.token,
            salt="participants",
            max_age=study.time_limit_minutes * 60,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )
    return response


@strict_csp
@ensure_csrf_cookie
@require_safe
def page(request, token: str):
    """Whatever page the session is on; a reload always lands here and resumes."""
    session = _session(token)
    study = session.study
    step = services.next_step(session)
    context = {"session": session, "study": study, "token": token}
    if step == "consent":
        context["consent"] = render_markdown(study.consent_markdown)
        return render(request, "participants/consent.html", context)
    if step == "demographics":
        context["form"] = DemographicsForm()
        return render(request, "participants/demographics.html", context)
    if step == "instructions":
        context["instructions"] = services.plan_for(study).spec.instructions
        return render(request, "participants/instructions.html", context)
    if step == "task":
        context["config"] = _player_config(session)
        return render(request, "participants/task.html", context)
    return _ended(request, session)


def _ended(request, session: Session):
    url = ""
    code = ""
    if session.state == SessionState.COMPLETED:
        url = completion_url(session.study, session)
        code = session.study.completion_code
    elif session.state == SessionState.SCREENED_OUT:
        url = completion_url(session.study, session, screened_out=True)
        code = session.study.screenout_code
    context = {
        "study": session.study,
        "session": session,
        "message": (
            QUOTA_FULL
            if session.state == SessionState.SCREENED_OUT and session.consented
            else ENDED.get(session.state, "This session is over.")
        ),
        "code": code,
        "redirect_url": url,
    }
    return render(request, "participants/done.html", context)


def _player_config(session: Session) -> dict:
    plan = services.plan_for(session.study)
    responses = session.responses.order_by("position")
    return {
        "kind": plan.kind,
        "token": session.token,
        "order": session.trial_order,
        "trials": {key: plan.trials[key] for key in session.trial_order},
        "answered": {r.item_key: r.feedback for r in responses},
        "answerUrl": reverse("participants:answer", kwargs={"token": session.token}),
        "completeUrl": reverse("participants:complete", kwargs={"token": session.token}),
        "preview": False,
    }


@strict_csp
@rate_limit("form", limit=60, by="token")
@require_POST
def consent(request, token: str):
    """Agree (continue) or decline (the session ends, nothing is recorded)."""
    session = _session(token)
    try:
        if request.POST.get("choice") == "agree":
            services.give_consent(session=session)
        else:
            services.decline_consent(session=session)
    except services.ParticipationError:
        pass  # the page shows the session's end state
    return redirect("participants:page", token=token)


@strict_csp
@rate_limit("form", limit=60, by="token")
@require_POST
def demographics(request, token: str):
    """Store the optional demographics and continue."""
    session = _session(token)
    form = DemographicsForm(request.POST)
    if not form.is_valid():
        context = {"session": session, "study": session.study, "token": token, "form": form}
        return render(request, "participants/demographics.html", context, status=400)
    with contextlib.suppress(services.ParticipationError):
        services.save_demographics(session=session, data=form.cleaned_data)
    return redirect("participants:page", token=token)


@strict_csp
@rate_limit("form", limit=60, by="token")
@require_POST
def instructions(request, token: str):
    """The participant starts the trials."""
    with contextlib.suppress(services.ParticipationError):
        services.finish_instructions(session=_session(token))
    return redirect("participants:page", token=token)


STATUS = {
    "unknown_item": 400,
    "bad_answer": 400,
    "bad_key": 400,
    "out_of_order": 409,
    "not_ready": 409,
    "incomplete": 409,
}


@strict_csp
@rate_limit("answer", limit=240, by="token")
@require_POST
def answer(request, token: str):
    """Save one answer (JSON body); a repeated POST returns the stored answer, 200 not 201."""
    session = _session(token)
    try:
        body = parse_answer(request.body)
    except BadAnswer as exc:
        return JsonResponse({"error": "bad_body", "message": str(exc)}, status=400)
    try:
        response, created = services.record_response(
            session=session,
            item_key=body.item_key,
            answer=body.answer,
            idempotency_key=body.idempotency_key,
            rt_ms=body.rt_ms,
            client_ts=body.client_ts,
            telemetry=body.telemetry,
        )
    except services.ParticipationError as exc:
        status = STATUS.get(exc.code, 410)
        return JsonResponse({"error": exc.code, "message": str(exc)}, status=status)
    return JsonResponse(
        {
            "item_key": response.item_key,
            "answer": response.answer,
            "feedback": response.feedback,
            "saved": True,
        },
        status=201 if created else 200,
    )


@strict_csp
@rate_limit("form", limit=60, by="token")
@require_POST
def complete(request, token: str):
    """Finish the session once every answer is stored; replies with the end page URL."""
    session = _session(token)
    try:
        services.complete_session(session=session)
    except services.ParticipationError as exc:
        return JsonResponse(
            {"error": exc.code, "message": str(exc)}, status=STATUS.get(exc.code, 410)
        )
    return JsonResponse({"next": reverse("participants:page", kwargs={"token": token})})


@strict_csp
@rate_limit("form", limit=60, by="token")
def withdraw(request, token: str):
    """Confirm, then delete the participant's data (an anonymous audit row stays)."""
    session = _session(token)
    if request.method == "POST":
        study = session.study
        services.withdraw(session=session)
        return render(request, "participants/withdrawn.html", {"study": study})
    return render(request, "participants/withdraw.html", {"session": session, "token": token})


def _may_see_studies(request) -> None:
    # Staff status opens the admin; a study's content takes its view or change permission.
    user = request.user
    if not (user.has_perm("participants.view_study") or user.has_perm("participants.change_study")):
        raise PermissionDenied


@strict_csp
@staff_member_required
@ensure_csrf_cookie
@require_GET
def preview(request, pk: int):
    """The study as a participant sees it, answers kept in the page only: nothing is stored."""
    _may_see_studies(request)
    study = get_object_or_404(Study, pk=pk)
    plan = services.plan_for(study)
    order = services.trial_order(study, order_seed=study.seed)
    config = {
        "kind": plan.kind,
        "token": f"preview-{study.pk}",
        "order": order,
        "trials": {key: plan.trials[key] for key in order},
        "answered": {},
        "answerUrl": reverse("participants:preview_feedback", kwargs={"pk": study.pk}),
        "completeUrl": "",
        "preview": True,
    }
    context = {
        "study": study,
        "consent": render_markdown(study.consent_markdown),
        "instructions": plan.spec.instructions,
        "config": config,
        "is_open": study.status == StudyStatus.OPEN,
    }
    return render(request, "participants/preview.html", context)


@strict_csp
@staff_member_required
@require_POST
def preview_feedback(request, pk: int):
    """Feedback a preview answer would get; computed, never stored."""
    _may_see_studies(request)
    study = get_object_or_404(Study, pk=pk)
    try:
        body = json.loads(request.body)
        item_key, given = str(body["item_key"]), str(body["answer"])
        feedback = services.feedback_for(study, item_key, given)
    except (ValueError, KeyError, TypeError, RecursionError):
        return JsonResponse({"error": "bad_answer"}, status=400)
    return JsonResponse({"item_key": item_key, "answer": given, "feedback": feedback})
