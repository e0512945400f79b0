"""The authorization matrix: every API route and admin page × every kind of visitor.

Visitors: anonymous, a participant (a running session; its token tried as an API token),
staff without permissions, staff with each permission of the project's models, and a
superuser. The expected answer of each cell is written from the policy in the README
(API: staff or view permission for tasks and datasets, view/add permissions for endpoints
and runs; admin: Django's view/add/change permissions, endpoints also need
``configure_endpoint``), not read back from the code.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from rest_framework.authtoken.models import Token

from benchmark.models import (
    HumanDataset,
    Item,
    ItemDistribution,
    ModelEndpoint,
    Provider,
    Transcript,
)
from benchmark.services.runs import queue_run
from participants import services
from participants.models import Flag, Session, Withdrawal
from participants.recruitment import parse_arrival

pytestmark = pytest.mark.django_db

APPS = ("benchmark", "participants")
# Models whose admin offers "add" at all; the others are written by the system only.
ADDABLE = {"modelendpoint", "modelrun", "study"}
# Read by staff or with the model's view permission (API).
STAFF_READ = {
    "tasks": "task",
    "versions": "taskversion",
    "items": "item",
    "datasets": "humandataset",
    "transcripts": "transcript",
    "item-distributions": "itemdistribution",
}
# Read with the view permission only (API).
PERM_READ = {"endpoints": "modelendpoint", "runs": "modelrun"}


@dataclass
class World:
    """One object of each kind, for detail routes and change pages."""

    ids: dict
    run_id: int
    study_id: int
    token: str


@pytest.fixture
def world(mini_version, make_study):
    task = mini_version.task
    dataset = HumanDataset.objects.create(
        slug="people", name="People", task=task, source="imported", content_sha256="a" * 64
    )
    transcript = Transcript.objects.create(
        dataset=dataset, line=1, participant="p1", text="I say <<2>>.", spans=[[7, 8]]
    )
    distribution = ItemDistribution.objects.create(
        dataset=dataset, item_key="q1", n=10, proportions={"1": 0.5, "2": 0.5}
    )
    endpoint = ModelEndpoint.objects.create(
        name="api-model",
        provider=Provider.OPENAI,
        model="m",
        settings={"base_url": "http://127.0.0.1:9", "capabilities": ["sample", "chat"]},
    )
    run = queue_run(endpoint=endpoint, task_version=mini_version, scoring_mode="sampled")
    study = make_study(mini_version)
    session, _ = services.start_session(
        study=study, arrival=parse_arrival("prolific", {"PROLIFIC_PID": "5f3a" * 6})
    )
    flag = Flag.objects.create(session=session, kind="paste")
    withdrawal = Withdrawal.objects.create(
        study=study, started=session.started, responses_deleted=0, state_before="started"
    )
    ids = {
        "task": task.pk,
        "taskversion": mini_version.pk,
        "item": Item.objects.filter(version=mini_version).first().pk,
        "humandataset": dataset.pk,
        "transcript": transcript.pk,
        "itemdistribution": distribution.pk,
        "modelendpoint": endpoint.pk,
        "modelrun": run.pk,
        "study": study.pk,
        "session": session.pk,
        "flag": flag.pk,
        "withdrawal": withdrawal.pk,
    }
    return World(ids=ids, run_id=run.pk, study_id=study.pk, token=session.token)


def project_permissions() -> list[str]:
    """View, add, change and special permissions of the models with a page or a route."""
    models = set(STAFF_READ.values()) | set(PERM_READ.values()) | set(ADDABLE)
    models |= {"session", "flag", "withdrawal", "modelresponse"}
    return sorted(
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.filter(
            content_type__app_label__in=APPS, content_type__model__in=models
        ).exclude(codename__startswith="delete_")
    )


def visitor(kind: str, perm: str = "", world: World | None = None) -> tuple[Client, set, dict]:
    """A client, its permissions (codenames; "*" for a superuser) and API headers."""
    client = Client()
    if kind == "anonymous":
        return client, set(), {}
    if kind == "participant":
        client.get(f"/s/p/{world.token}/")  # holds a participant page, no account
        return client, set(), {"HTTP_AUTHORIZATION": f"Token {world.token}"}
    if kind == "superuser":
        user = User.objects.create_superuser(f"su{perm}", "su@example.org", "pw-for-tests-1")
        perms = {"*"}
    else:
        user = User.objects.create_user(f"u-{perm or 'none'}")  # no password: no hashing
        user.is_staff = True
        user.save()
        perms = set()
        if perm:
            app, _, codename = perm.partition(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app, codename=codename)
            )
            perms = {codename}
    token = Token.objects.create(user=user)
    client.force_login(user)
    return client, perms, {"HTTP_AUTHORIZATION": f"Token {token.key}"}


def has(perms: set, codename: str) -> bool:
    return "*" in perms or codename in perms


# --- the API ------------------------------------------------------------------------------


def api_cells(world: World):
    """(method, url, body, model, allowed(perms, staff) -> expected status set)."""
    ids = world.ids
    detail = {
        "tasks": "mini-q",
        "versions": ids["taskversion"],
        "items": ids["item"],
        "datasets": ids["humandataset"],
        "transcripts": ids["transcript"],
        "item-distributions": ids["itemdistribution"],
        "endpoints": ids["modelendpoint"],
        "runs": ids["modelrun"],
    }
    cells = []
    for route, model in STAFF_READ.items():
        rule = lambda p, staff, m=model: {200} if staff or has(p, f"view_{m}") else {403}  # noqa: E731
        cells += [
            ("get", f"/api/v1/{route}/", None, model, rule),
            ("get", f"/api/v1/{route}/{detail[route]}/", None, model, rule),
            ("post", f"/api/v1/{route}/", {}, model, lambda p, staff: {403, 405}),
        ]
    for route, model in PERM_READ.items():
        rule = lambda p, staff, m=model: {200} if has(p, f"view_{m}") else {403}  # noqa: E731
        cells += [
            ("get", f"/api/v1/{route}/", None, model, rule),
            ("get", f"/api/v1/{route}/{detail[route]}/", None, model, rule),
        ]
    queue = {
        "endpoint": "api-model",
        "task_version": ids["taskversion"],
        "scoring_mode": "sampled",
        "estimate_only": True,
    }
    add_run = lambda p, staff: {200} if has(p, "add_modelrun") else {403}  # noqa: E731
    cells.append(("post", "/api/v1/runs/", queue, "modelrun", add_run))
    for action in ("resume", "cancel"):
        cells.append(("post", f"/api/v1/runs/{world.run_id}/{action}/", None, "modelrun", add_run))
    # Allowed, but this run has no failed unit: "nothing to retry" (400), not a refusal.
    retry = lambda p, staff: {400} if has(p, "add_modelrun") else {403}  # noqa: E731
    cells.append(("post", f"/api/v1/runs/{world.run_id}/retry/", None, "modelrun", retry))
    refused = lambda p, staff: {403, 405}  # noqa: E731
    cells.append(("post", "/api/v1/endpoints/", {"name": "x"}, "modelendpoint", refused))
    cells.append(("get", "/api/schema/?format=json", None, "", lambda p, staff: {200}))
    cells.append(("get", "/api/schema/docs/", None, "", lambda p, staff: {200}))
    return cells


def call(client, method, url, body, headers):
    if body is None:
        return getattr(client, method)(url, **headers)
    return getattr(client, method)(url, body, content_type="application/json", **headers)


def own_models(perm: str) -> set:
    """The models whose routes and pages a single permission could change."""
    codename = perm.partition(".")[2]
    model = "modelendpoint" if codename == "configure_endpoint" else codename.partition("_")[2]
    return {model}


def check_api(kind: str, perm: str, world: World, perms: set, headers: dict) -> list[str]:
    wrong = []
    cells = api_cells(world)
    if perm:
        # As for the admin below: the routes of the permission's own model, and every
        # route that writes.
        cells = [c for c in cells if c[3] in own_models(perm) or c[0] == "post"]
    for method, url, body, _model, rule in cells:
        # Token and session both authenticate; try the token alone (no session cookie).
        token_client = Client()
        got = call(token_client, method, url, body, headers).status_code
        expected = {401, 403} if kind in ("anonymous", "participant") else rule(perms, True)
        if got not in expected:
            wrong.append(f"{kind}{'/' + perm if perm else ''} {method.upper()} {url}: {got}")
        if got == 200 and kind in ("anonymous", "participant"):
            wrong.append(f"data given to {kind} at {url}")
    return wrong


# --- the admin ----------------------------------------------------------------------------


def admin_cells(world: World):
    """(url, method, model, action) for every model page of our apps and the custom pages."""
    cells = []
    for model, pk in world.ids.items():
        app = "participants" if model in {"study", "session", "flag", "withdrawal"} else "benchmark"
        base = f"/admin/{app}/{model}/"
        cells += [
            (base, "get", model, "view"),
            (f"{base}{pk}/change/", "get", model, "view"),
            (f"{base}add/", "get", model, "add"),
        ]
    cells += [
        ("/admin/benchmark/modelresponse/", "get", "modelresponse", "view"),
        ("/admin/benchmark/humandataset/import/", "get", "humandataset", "import"),
        ("/admin/benchmark/modelrun/queue/", "get", "modelrun", "queue"),
        (f"/admin/participants/study/{world.study_id}/export/csv/", "get", "study", "export"),
        (f"/s/preview/{world.study_id}/", "get", "study", "preview"),
    ]
    return cells


def admin_expected(kind: str, perms: set, model: str, action: str) -> set:
    if kind in ("anonymous", "participant"):
        return {302}  # to the login page
    if action == "view":
        return {200} if has(perms, f"view_{model}") or has(perms, f"change_{model}") else {403}
    if action == "add":
        if model == "modelrun":
            return {302}  # "add" is the queue page, which checks (the "queue" cell)
        if model not in ADDABLE or not has(perms, f"add_{model}"):
            return {403}
        if model == "modelendpoint" and not has(perms, "configure_endpoint"):
            return {403}
        return {200}
    if action == "import":
        return {200} if has(perms, "add_humandataset") else {403}
    if action == "queue":
        return {200} if has(perms, "add_modelrun") else {403}
    if action == "export":
        return {200} if has(perms, "view_study") or has(perms, "change_study") else {404}
    if action == "preview":
        return {200} if has(perms, "view_study") or has(perms, "change_study") else {403}
    raise AssertionError(action)


def check_admin(kind: str, perm: str, world: World, client: Client, perms: set) -> list[str]:
    wrong = []
    cells = admin_cells(world)
    if perm:
        # A single permission: the pages of its own model and the custom pages (import,
        # queue, export, preview); every other page answers as for staff without
        # permissions, which is checked in full.
        cells = [c for c in cells if c[2] in own_models(perm) or c[3] not in ("view", "add")]
    for url, method, model, action in cells:
        got = getattr(client, method)(url).status_code
        expected = admin_expected(kind, perms, model, action)
        if got not in expected:
            wrong.append(f"{kind}{'/' + perm if perm else ''} {url}: {got}, expected {expected}")
    index = client.get("/admin/").status_code
    if index != (302 if kind in ("anonymous", "participant") else 200):
        wrong.append(f"{kind} /admin/: {index}")
    return wrong


def check(kind: str, perm: str, world: World) -> list[str]:
    client, perms, headers = visitor(kind, perm, world)
    return check_api(kind, perm, world, perms, headers) + check_admin(
        kind, perm, world, client, perms
    )


@pytest.mark.parametrize("kind", ["anonymous", "participant", "staff", "superuser"])
def test_the_matrix_for_each_kind_of_visitor(world, kind):
    assert check(kind, "", world) == []


def test_the_matrix_for_staff_with_each_permission(world):
    perms = project_permissions()
    assert "benchmark.configure_endpoint" in perms and len(perms) == 3 * 13 + 1
    wrong = []
    for perm in perms:
        wrong += check("staff", perm, world)
    assert wrong == []


def test_a_participant_token_opens_nothing_but_its_session(world):
    client = Client()
    assert client.get(f"/s/p/{world.token}/").status_code == 200
    assert client.get("/admin/").status_code == 302
    headers = {"HTTP_AUTHORIZATION": f"Token {world.token}"}
    refused = client.get("/api/v1/tasks/", **headers)
    assert refused.status_code == 403 and "results" not in refused.json()
    assert Session.objects.filter(token=world.token).count() == 1
