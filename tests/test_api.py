"""The read-only API: authentication, permissions, values, pagination, filters, schema."""

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from benchmark.models import (
    DatasetSource,
    HumanDataset,
    Item,
    ItemDistribution,
    Task,
    TaskVersion,
    Transcript,
)

pytestmark = pytest.mark.django_db

READ_PERMISSIONS = (
    "view_task",
    "view_taskversion",
    "view_item",
    "view_humandataset",
    "view_transcript",
    "view_itemdistribution",
)


@pytest.fixture
def superuser(db):
    """A superuser without a password: tests log in with force_login, no slow hashing."""
    return User.objects.create_superuser("root", "root@example.org", None)


@pytest.fixture
def data():
    """A task with two versions, two items, 120 transcripts and one item distribution."""
    task = Task.objects.create(slug="mini", family="test", title="Mini", kind="questionnaire")
    other = Task.objects.create(slug="other", family="test", title="Other", kind="choice")
    TaskVersion.objects.create(task=task, number=1, spec_hash="a" * 64, spec={"k": 1})
    version = TaskVersion.objects.create(task=task, number=2, spec_hash="c" * 64, spec={"k": 2})
    Item.objects.create(version=version, key="q1", position=0, text="I talk.", scale="E")
    Item.objects.create(version=version, key="q2", position=1, text="I sit.", scale="N")
    dataset = HumanDataset.objects.create(
        slug="people",
        name="People",
        task=task,
        source=DatasetSource.IMPORTED,
        content_sha256="b" * 64,
        n_participants=120,
    )
    HumanDataset.objects.create(
        slug="counts",
        name="Counts",
        task=other,
        source=DatasetSource.BUNDLED,
        content_sha256="d" * 64,
    )
    Transcript.objects.bulk_create(
        Transcript(
            dataset=dataset,
            line=i + 1,
            participant=f"p{i}",
            text=f"Pick <<{i % 2}>>.",
            spans=[[7, 8]],
            rts=[100 + i],
            profile={
                "diagnosis": "Healthy" if i % 3 else "Depression",
                "gender": "female" if i % 2 else "male",
            },
            extra={"score": i},
        )
        for i in range(120)
    )
    ItemDistribution.objects.create(
        dataset=dataset, item_key="q1", n=10, proportions={"1": 0.3, "2": 0.7}
    )
    return dataset


def detail_urls():
    """One detail URL per endpoint, for rows of the `data` fixture."""
    return [
        "/api/v1/tasks/mini/",
        f"/api/v1/versions/{TaskVersion.objects.first().pk}/",
        f"/api/v1/items/{Item.objects.first().pk}/",
        f"/api/v1/datasets/{HumanDataset.objects.first().pk}/",
        f"/api/v1/transcripts/{Transcript.objects.get(participant='p1').pk}/",
        f"/api/v1/item-distributions/{ItemDistribution.objects.first().pk}/",
    ]


LISTS = [
    "/api/v1/tasks/",
    "/api/v1/versions/",
    "/api/v1/items/",
    "/api/v1/datasets/",
    "/api/v1/transcripts/",
    "/api/v1/item-distributions/",
]


@pytest.fixture
def reader():
    """A staff user with the view permission on every model of the API."""
    user = User.objects.create_user("reader", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=READ_PERMISSIONS, content_type__app_label="benchmark"
        )
    )
    return user


@pytest.fixture
def token(data, reader):
    """Token authentication headers for `reader`."""
    return {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=reader).key}"}


def get(client, url, auth):
    """GET a URL that must answer 200, as JSON."""
    response = client.get(url, **auth)
    assert response.status_code == 200, (url, response.content[:300])
    return response.json()


def test_anonymous_gets_no_data_anywhere(client, data):
    for url in [*LISTS, *detail_urls(), "/api/schema/", "/api/schema/docs/"]:
        response = client.get(url)
        assert response.status_code in (401, 403), url
        body = response.content
        assert b"p1" not in body and b"Mini" not in body and b"people" not in body, url


def test_bad_token_is_refused(client, data):
    response = client.get("/api/v1/tasks/", HTTP_AUTHORIZATION="Token not-a-key")
    assert response.status_code in (401, 403)
    assert response.json() == {"detail": "Invalid token."}


def test_user_without_view_permission_is_refused(client, data):
    client.force_login(User.objects.create_user("nobody"))
    for url in [*LISTS, *detail_urls()]:
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"mini" not in response.content


def test_view_permission_is_per_model(client, data):
    user = User.objects.create_user("analyst")
    user.user_permissions.add(
        Permission.objects.get(codename="view_transcript", content_type__app_label="benchmark")
    )
    client.force_login(user)
    assert client.get("/api/v1/transcripts/").json()["count"] == 120
    assert client.get("/api/v1/tasks/").status_code == 403
    assert client.get("/api/v1/datasets/").status_code == 403


def test_staff_reads_without_model_permissions(client, data):
    client.force_login(User.objects.create_user("lab", is_staff=True))
    assert client.get("/api/v1/datasets/?ordering=slug").json()["results"][0]["slug"] == "counts"


def test_the_api_is_read_only(client, data, superuser):
    client.force_login(superuser)
    task = client.post("/api/v1/tasks/", {"slug": "new"}, content_type="application/json")
    assert task.status_code in (403, 405)
    url = f"/api/v1/transcripts/{Transcript.objects.get(participant='p1').pk}/"
    assert client.delete(url).status_code in (403, 405)
    assert client.patch(url, {"participant": "x"}, content_type="application/json").status_code in (
        403,
        405,
    )
    assert Task.objects.count() == 2
    assert Transcript.objects.filter(participant="p1").exists()


def test_token_auth_reads_values(client, token):
    tasks = get(client, "/api/v1/tasks/", token)
    assert tasks["count"] == 2
    mini = tasks["results"][0]
    assert mini["slug"] == "mini" and mini["title"] == "Mini" and mini["n_versions"] == 2
    newest = TaskVersion.objects.get(number=2)
    assert mini["latest_version"] == {"id": newest.pk, "number": 2, "spec_hash": "c" * 64}
    assert tasks["results"][1]["latest_version"] is None
    assert get(client, "/api/v1/tasks/mini/", token)["latest_version"]["number"] == 2
    assert client.get("/api/v1/tasks/nope/", **token).status_code == 404

    versions = get(client, "/api/v1/versions/?task=mini&ordering=number", token)
    assert [(v["number"], v["n_items"]) for v in versions["results"]] == [(1, 0), (2, 2)]
    assert all("spec" not in v for v in versions["results"])
    detail = get(client, f"/api/v1/versions/{newest.pk}/", token)
    assert detail["spec"] == {"k": 2} and detail["task"] == "mini"
    by_hash = get(client, f"/api/v1/versions/?spec_hash={'a' * 64}", token)
    assert [v["number"] for v in by_hash["results"]] == [1]

    dataset = get(client, "/api/v1/datasets/?task=mini", token)["results"]
    assert [(d["slug"], d["n_participants"], d["task"]) for d in dataset] == [
        ("people", 120, "mini")
    ]
    bundled = get(client, "/api/v1/datasets/?source=bundled", token)["results"]
    assert [d["slug"] for d in bundled] == ["counts"]

    dists = get(client, "/api/v1/item-distributions/?dataset=people", token)["results"]
    assert [(d["item_key"], d["n"], d["proportions"]) for d in dists] == [
        ("q1", 10, {"1": 0.3, "2": 0.7})
    ]
    assert get(client, "/api/v1/item-distributions/?dataset=counts", token)["count"] == 0


def test_session_auth_works_too(client, data, superuser):
    client.force_login(superuser)
    datasets = client.get("/api/v1/datasets/?slug=people").json()
    assert datasets["count"] == 1
    assert datasets["results"][0]["n_participants"] == 120


def test_item_filters(client, token):
    version = TaskVersion.objects.get(number=2)
    items = get(client, "/api/v1/items/?task=mini&scale=N", token)
    assert [i["key"] for i in items["results"]] == ["q2"]
    by_version = get(client, f"/api/v1/items/?version={version.pk}", token)
    assert [(i["key"], i["text"], i["version"]) for i in by_version["results"]] == [
        ("q1", "I talk.", version.pk),
        ("q2", "I sit.", version.pk),
    ]
    assert get(client, "/api/v1/items/?task=other", token)["count"] == 0
    assert [i["key"] for i in get(client, "/api/v1/items/?search=talk", token)["results"]] == ["q1"]


def test_pagination(client, token):
    first = get(client, "/api/v1/transcripts/", token)
    assert first["count"] == 120
    assert len(first["results"]) == 50
    assert first["previous"] is None
    assert first["next"].endswith("/api/v1/transcripts/?page=2")
    assert [t["participant"] for t in first["results"][:2]] == ["p0", "p1"]
    last = get(client, "/api/v1/transcripts/?page=3", token)
    assert len(last["results"]) == 20 and last["next"] is None
    assert last["results"][-1]["participant"] == "p119"
    sized = get(client, "/api/v1/transcripts/?page_size=7&page=2", token)
    assert [t["line"] for t in sized["results"]] == list(range(8, 15))
    assert sized["next"].endswith("page=3&page_size=7")
    assert client.get("/api/v1/transcripts/?page=4", **token).status_code == 404


def test_page_size_is_clamped_to_500(client, token, data):
    Transcript.objects.bulk_create(
        Transcript(dataset=data, line=200 + i, participant=f"x{i}") for i in range(400)
    )
    clamped = get(client, "/api/v1/transcripts/?page_size=100000", token)
    assert clamped["count"] == 520
    assert len(clamped["results"]) == 500
    assert clamped["next"].endswith("page=2&page_size=100000")
    assert len(get(client, clamped["next"], token)["results"]) == 20


def test_transcript_filters(client, token):
    depressed = get(client, "/api/v1/transcripts/?diagnosis=Depression&page_size=500", token)
    assert depressed["count"] == 40
    assert [t["participant"] for t in depressed["results"]] == [f"p{i}" for i in range(0, 120, 3)]
    # Profile values are matched without regard to case.
    assert get(client, "/api/v1/transcripts/?diagnosis=depression", token)["count"] == 40
    women = get(client, "/api/v1/transcripts/?gender=female&diagnosis=Depression", token)
    assert [t["participant"] for t in women["results"][:3]] == ["p3", "p9", "p15"]
    assert women["count"] == 20
    assert get(client, "/api/v1/transcripts/?dataset=people", token)["count"] == 120
    assert get(client, "/api/v1/transcripts/?dataset=counts", token)["count"] == 0
    assert get(client, "/api/v1/transcripts/?dataset=other", token)["count"] == 0
    found = get(client, "/api/v1/transcripts/?search=p11", token)
    expected = ["p11", *(f"p11{i}" for i in range(10))]
    assert sorted(t["participant"] for t in found["results"]) == expected


def test_transcript_list_versus_detail(client, token):
    one = get(client, "/api/v1/transcripts/?dataset=people&participant=p7", token)
    assert one["count"] == 1
    row = one["results"][0]
    assert "text" not in row and "rts" not in row and "extra" not in row
    assert row["n_responses"] == 1 and row["dataset"] == "people" and row["line"] == 8
    assert row["profile"] == {"diagnosis": "Healthy", "gender": "female"}
    detail = get(client, f"/api/v1/transcripts/{row['id']}/", token)
    assert detail["text"] == "Pick <<1>>."
    assert detail["spans"] == [[7, 8]] and detail["responses"] == ["1"]
    assert detail["rts"] == [107] and detail["extra"] == {"score": 7}
    assert detail["profile"] == row["profile"]


def test_schema_and_docs_page_are_local(client, superuser):
    client.force_login(superuser)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/v1/tasks/",
        "/api/v1/tasks/{slug}/",
        "/api/v1/versions/{id}/",
        "/api/v1/items/",
        "/api/v1/datasets/",
        "/api/v1/transcripts/{id}/",
        "/api/v1/item-distributions/",
        "/api/v1/runs/",
    ):
        assert path in schema["paths"], path
    parameters = {p["name"] for p in schema["paths"]["/api/v1/transcripts/"]["get"]["parameters"]}
    assert {"dataset", "participant", "diagnosis", "gender", "page", "page_size"} <= parameters
    docs = client.get("/api/schema/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html.lower()
    external = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", html)
    assert external == []
    assert re.search(r"""src=["']/static/[^"']*swagger-ui-bundle\.js""", html)


def test_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = out.read_text()
    assert "openapi: 3." in schema
    assert "/api/v1/item-distributions/{id}/:" in schema
