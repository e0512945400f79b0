"""Admin pages load for a superuser; read-only models stay read-only; the Psych-201 upload."""

import html

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory, override_settings

from benchmark.models import HumanDataset, Item, ItemDistribution, Task, TaskVersion, Transcript
from benchmark.services.tasks import load_tasks
from tests.test_specs import GOOD

pytestmark = pytest.mark.django_db

GOOD_FILE = (
    b'{"text": "You pick <<A>>.", "experiment": "e", "participant": "1"}\n'
    b'{"text": "You pick <<B>> and <<A>>.", "experiment": "e", "participant": "2"}\n'
    b'{"text": "You pick <<B>>.", "experiment": "e", "participant": "3", "RTs": [812]}\n'
)
IMPORT_URL = "/admin/benchmark/humandataset/import/"
READ_ONLY = (TaskVersion, Item, Transcript, ItemDistribution)


@pytest.fixture
def superuser(db):
    """A superuser without a password: tests log in with force_login, no slow hashing."""
    return User.objects.create_superuser("root", "root@example.org", None)


@pytest.fixture
def task(tmp_path):
    """The mini questionnaire (one version, two items)."""
    path = tmp_path / "mini-q.yaml"
    path.write_text(GOOD)
    load_tasks([path])
    return Task.objects.get(slug="mini-q")


@pytest.fixture
def content(task, tmp_path):
    """The mini questionnaire, a three-participant import and one item distribution."""
    from benchmark.services.datasets import import_psych201

    source = tmp_path / "a.jsonl"
    source.write_bytes(GOOD_FILE)
    dataset, _ = import_psych201(source=source, file_name="a.jsonl")
    ItemDistribution.objects.create(dataset=dataset, item_key="q1", n=4, proportions={"1": 1.0})
    return dataset


def upload(client, data=GOOD_FILE, file_name="study.jsonl", follow=False, **fields):
    """POST a file to the import page."""
    return client.post(
        IMPORT_URL, {"file": SimpleUploadedFile(file_name, data), **fields}, follow=follow
    )


def messages_of(response):
    """The texts of the messages queued for the next page."""
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_every_admin_page_loads(admin_client, superuser, content):
    request = RequestFactory().get("/admin/")
    request.user = superuser
    changed = set()
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        base = f"/admin/{meta.app_label}/{meta.model_name}/"
        assert admin_client.get(base).status_code == 200, base
        if model_admin.search_fields:
            assert admin_client.get(f"{base}?q=1").status_code == 200, base
        add = admin_client.get(f"{base}add/", follow=True)
        # An allowed add page may be a redirect to its own form (runs are queued, not added).
        assert add.status_code == (200 if model_admin.has_add_permission(request) else 403), base
        obj = model._default_manager.first()
        if obj is not None:
            change = admin_client.get(f"{base}{obj.pk}/change/")
            assert change.status_code == 200, base
            changed.add(model)
    assert {Task, TaskVersion, Item, HumanDataset, Transcript, ItemDistribution} <= changed


def test_read_only_models_refuse_add_change_and_delete(admin_client, content):
    for model in READ_ONLY:
        name = model._meta.model_name
        obj = model.objects.first()
        base = f"/admin/benchmark/{name}/"
        assert admin_client.get(f"{base}add/").status_code == 403, name
        page = admin_client.get(f"{base}{obj.pk}/change/")
        assert b'name="_save"' not in page.content, name
        assert b"deletelink" not in page.content, name
        assert admin_client.post(f"{base}{obj.pk}/change/", {}).status_code == 403, name
        delete = admin_client.post(f"{base}{obj.pk}/delete/", {"post": "yes"})
        assert delete.status_code == 403, name
        assert model.objects.filter(pk=obj.pk).exists(), name
        changelist = admin_client.get(base)
        if model is TaskVersion:
            # Its one action writes nothing to the versions: a report of their runs.
            assert b'value="build_task_report_action"' in changelist.content
            assert b'value="delete_selected"' not in changelist.content
        else:
            assert b'name="action"' not in changelist.content, name


def test_task_list_and_version_page_show_versions_spec_and_items(admin_client, content):
    version = TaskVersion.objects.get(task__slug="mini-q")
    tasks = admin_client.get("/admin/benchmark/task/?q=mini")
    row = tasks.context["cl"].result_list[0]
    assert (row.slug, row.version_count) == ("mini-q", 1)
    assert f"v1 ({version.spec_hash[:10]})" in tasks.content.decode()
    task_page = admin_client.get(f"/admin/benchmark/task/{version.task_id}/change/").content
    assert f"/admin/benchmark/taskversion/{version.pk}/change/".encode() in task_page

    page = admin_client.get(f"/admin/benchmark/taskversion/{version.pk}/change/").content.decode()
    assert html.escape('"slug": "mini-q"', quote=True) in page
    assert html.escape('\n  "title": "Mini questionnaire",\n', quote=True) in page
    link = f"/admin/benchmark/item/?version__id__exact={version.pk}"
    assert f'<a href="{html.escape(link)}">2 items</a>' in page
    items = admin_client.get(link)
    assert items.status_code == 200
    assert [i.key for i in items.context["cl"].result_list] == ["q1", "q2"]
    by_task = admin_client.get(
        f"/admin/benchmark/item/?scale=X&version__task__id__exact={version.task_id}"
    )
    assert [i.key for i in by_task.context["cl"].result_list] == ["q1", "q2"]
    assert admin_client.get("/admin/benchmark/item/?scale=Y").context["cl"].result_count == 0


def test_dataset_and_transcript_pages(admin_client, content):
    datasets = admin_client.get("/admin/benchmark/humandataset/?source__exact=imported")
    assert [d.slug for d in datasets.context["cl"].result_list] == [content.slug]
    page = admin_client.get(f"/admin/benchmark/humandataset/{content.pk}/change/").content.decode()
    link = f"/admin/benchmark/transcript/?dataset__id__exact={content.pk}"
    assert f'<a href="{html.escape(link)}">3 transcripts</a>' in page
    transcripts = admin_client.get(link)
    rows = transcripts.context["cl"].result_list
    assert [t.participant for t in rows] == ["1", "2", "3"]
    text = transcripts.content.decode()
    assert '<td class="field-n_responses">2</td>' in text
    assert '<td class="field-n_rts">1</td>' in text
    found = admin_client.get("/admin/benchmark/transcript/?q=2")
    assert [t.participant for t in found.context["cl"].result_list] == ["2"]
    second = Transcript.objects.get(dataset=content, participant="2")
    detail = admin_client.get(f"/admin/benchmark/transcript/{second.pk}/change/").content.decode()
    assert "<code>B</code>, <code>A</code>" in detail
    assert "You pick &lt;&lt;B&gt;&gt; and &lt;&lt;A&gt;&gt;." in detail


def test_import_button_and_page(admin_client):
    page = admin_client.get("/admin/benchmark/humandataset/").content.decode()
    assert f'href="{IMPORT_URL}"' in page and "Import Psych-201 file" in page
    form = admin_client.get(IMPORT_URL)
    assert form.status_code == 200
    text = form.content.decode()
    assert "csrfmiddlewaretoken" in text and 'enctype="multipart/form-data"' in text
    assert 'name="file"' in text and 'name="slug"' in text and 'name="task"' in text


def test_import_view_imports_and_reports(admin_client, task):
    response = upload(admin_client, slug="study", name="My study", task=task.pk)
    dataset = HumanDataset.objects.get(slug="study")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/benchmark/humandataset/{dataset.pk}/change/"
    assert messages_of(response) == ["Imported 3 participants into study."]
    assert (dataset.name, dataset.task, dataset.n_participants) == ("My study", task, 3)
    assert dataset.file_name == "study.jsonl"
    rows = list(dataset.transcripts.order_by("line"))
    assert [t.participant for t in rows] == ["1", "2", "3"]
    assert [t.responses for t in rows] == [["A"], ["B", "A"], ["B"]]
    assert rows[2].rts == [812]


def test_reimport_is_reported_as_already_imported(admin_client):
    upload(admin_client, slug="study")
    again = upload(admin_client, file_name="copy.jsonl", follow=True)
    assert again.redirect_chain[-1][0] == (
        f"/admin/benchmark/humandataset/{HumanDataset.objects.get().pk}/change/"
    )
    assert b"Already imported as study" in again.content
    assert HumanDataset.objects.count() == 1
    assert Transcript.objects.count() == 3


def test_import_view_shows_the_bad_line_and_writes_nothing(admin_client):
    bad = GOOD_FILE + b'{"text": "You pick <<C", "experiment": "e", "participant": "4"}\n'
    response = upload(admin_client, data=bad, file_name="bad.jsonl")
    assert response.status_code == 200
    errors = response.context["form"].errors["file"]
    assert errors == ["line 4: 'text': '<<' at character 9 is never closed. Nothing was imported."]
    assert html.escape(errors[0]) in response.content.decode()
    assert HumanDataset.objects.count() == 0
    assert Transcript.objects.count() == 0


def test_import_view_refuses_a_taken_slug_on_the_slug_field(admin_client, content):
    other = b'{"text": "You pick <<C>>.", "experiment": "f", "participant": "9"}\n'
    response = upload(admin_client, data=other, slug=content.slug)
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["slug"] == [f"a dataset with the slug '{content.slug}' exists already."]
    assert HumanDataset.objects.count() == 1


@override_settings(PSYCH201_MAX_UPLOAD_BYTES=100)
def test_import_view_refuses_files_over_the_limit(admin_client):
    response = upload(admin_client)
    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [
        f"The file has {len(GOOD_FILE):,} bytes; the limit is 100 (PSYCH201_MAX_UPLOAD_BYTES)."
    ]
    assert HumanDataset.objects.count() == 0


def test_import_view_needs_the_add_permission(client):
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_humandataset", content_type__app_label="benchmark")
    )
    client.force_login(user)
    assert client.get(IMPORT_URL).status_code == 403
    assert upload(client).status_code == 403
    assert HumanDataset.objects.count() == 0
    changelist = client.get("/admin/benchmark/humandataset/")
    assert changelist.status_code == 200
    assert b"Import Psych-201 file" not in changelist.content
