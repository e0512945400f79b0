"""Query strings and references the API cannot honour are refused with a message.

Before, DRF and django-filter dropped them silently and answered as if they were absent: a
misspelt filter returned everything, ``page_size=abc`` the default page, a NUL in a
reference a 500 on PostgreSQL.
"""

import pytest

from benchmark.models import Item, ModelEndpoint, Provider

pytestmark = pytest.mark.django_db


def get(client, url):
    response = client.get(url)
    return response.status_code, response.json()


def test_an_unknown_filter_is_refused_and_the_known_ones_are_named(admin_client, mini_version):
    status, body = get(admin_client, "/api/v1/items/?scael=x")
    assert status == 400
    assert "unknown query parameter" in body["scael"]
    assert "scale" in body["scael"] and "page_size" in body["scael"]


def test_a_repeated_parameter_is_refused(admin_client, mini_version):
    status, body = get(admin_client, "/api/v1/items/?page_size=1&page_size=2")
    assert (status, body) == (400, {"page_size": "given more than once"})


@pytest.mark.parametrize("param", ["page", "page_size"])
@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5", "٣", "", "last"])
def test_page_and_page_size_must_be_whole_numbers_from_1(admin_client, mini_version, param, value):
    status, body = get(admin_client, f"/api/v1/items/?{param}={value}")
    assert status == 400
    assert body[param] == f"a whole number from 1, got {value!r}"


def test_page_size_within_bounds_pages(admin_client, mini_version):
    status, body = get(admin_client, f"/api/v1/items/?version={mini_version.pk}&page_size=1")
    assert status == 200
    assert body["count"] == Item.objects.filter(version=mini_version).count() == 2
    assert len(body["results"]) == 1 and body["next"]


def test_ordering_by_an_unknown_field_is_refused(admin_client, mini_version):
    status, body = get(admin_client, "/api/v1/items/?ordering=-text")
    assert status == 400
    assert body["ordering"].startswith("cannot order by '-text'; one of key, position")


def test_ordering_by_known_fields_orders(admin_client, mini_version):
    status, body = get(admin_client, f"/api/v1/items/?version={mini_version.pk}&ordering=-position")
    assert status == 200
    positions = [item["position"] for item in body["results"]]
    assert positions == sorted(positions, reverse=True) and len(positions) == 2


def test_a_yes_no_filter_takes_only_true_or_false(admin_client):
    ModelEndpoint.objects.create(name="e", provider=Provider.HF, model="m", post_trained=True)
    assert get(admin_client, "/api/v1/endpoints/?post_trained=maybe") == (
        400,
        {"post_trained": "true or false, got 'maybe'"},
    )
    status, body = get(admin_client, "/api/v1/endpoints/?post_trained=false")
    assert (status, body["count"]) == (200, 0)
    status, body = get(admin_client, "/api/v1/endpoints/?post_trained=true")
    assert (status, body["count"]) == (200, 1)


def test_an_id_that_does_not_exist_matches_nothing(admin_client, mini_version):
    # A well-formed request: an empty list, not a 400.
    status, body = get(admin_client, "/api/v1/items/?version=987654")
    assert (status, body["count"], body["results"]) == (200, 0, [])


def test_a_nul_character_is_refused_in_queries_and_references(admin_client, mini_version):
    status, body = get(admin_client, "/api/v1/datasets/?slug=a%00b")
    assert (status, body) == (400, {"slug": "contains a NUL character"})
    response = admin_client.post(
        "/api/v1/runs/",
        {"endpoint": "a\x00b", "task_version": mini_version.pk},
        content_type="application/json",
    )
    assert response.status_code == 400 and list(response.json()) == ["endpoint"]
    response = admin_client.post(
        "/api/v1/reports/", {"runs": [], "datasets": ["x\x00"]}, content_type="application/json"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"runs", "datasets"}
    assert "empty" in response.json()["runs"][0]
