"""Item 5: behind trusted proxies, limits and the lockout count each client, not the proxy."""

import pytest
from django.test import Client, RequestFactory, override_settings

from participants.security import LOGIN_FAILURES_PER_IP, LOGIN_FAILURES_PER_USER, client_ip

PROXY = "10.0.0.2"


def ip(remote, forwarded=None, **conf):
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    with override_settings(**{"TRUSTED_PROXIES": [], "PROXY_HOPS": 0, **conf}):
        return client_ip(RequestFactory().get("/", **meta))


def test_without_a_setting_the_header_is_ignored():
    assert ip("203.0.113.9", "198.51.100.1") == "203.0.113.9"


def test_trusted_networks_are_skipped_from_the_right():
    nets = {"TRUSTED_PROXIES": ["10.0.0.0/8", "127.0.0.1"]}
    assert ip(PROXY, "198.51.100.7", **nets) == "198.51.100.7"
    # A client's forged entry sits left of the real one and is never reached.
    assert ip(PROXY, "1.2.3.4, 198.51.100.7", **nets) == "198.51.100.7"
    assert ip(PROXY, "198.51.100.7, 10.9.9.9", **nets) == "198.51.100.7"  # two proxies
    # Not from a proxy: the header is the client's own claim.
    assert ip("203.0.113.9", "198.51.100.7", **nets) == "203.0.113.9"
    assert ip(PROXY, "not-an-ip", **nets) == PROXY
    assert ip(PROXY, None, **nets) == PROXY
    assert ip(PROXY, "2001:db8::1", **nets) == "2001:db8::1"


def test_hops_count_proxies_from_the_right():
    assert ip(PROXY, "1.2.3.4, 198.51.100.7", PROXY_HOPS=1) == "198.51.100.7"
    assert ip(PROXY, "1.2.3.4, 198.51.100.7, 10.1.1.1", PROXY_HOPS=2) == "198.51.100.7"
    assert ip(PROXY, None, PROXY_HOPS=1) == PROXY
    assert ip(PROXY, "junk", PROXY_HOPS=1) == PROXY


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"], PARTICIPANT_RATE_LIMITS={"start": 3})
def test_participants_behind_one_proxy_each_get_their_own_start_limit(q_version, make_study):
    study = make_study(q_version, source="open")
    client = Client(REMOTE_ADDR=PROXY)
    for n in range(10):  # ten people, one start each, all through the proxy
        page = client.get(f"/s/{study.slug}/", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        assert page.status_code == 302
    one = {"HTTP_X_FORWARDED_FOR": "198.51.100.200"}
    assert [
        Client(REMOTE_ADDR=PROXY).get(f"/s/{study.slug}/", **one).status_code for _ in range(4)
    ] == [
        302,
        302,
        302,
        429,
    ]


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_one_attackers_failed_logins_do_not_lock_out_others_behind_the_proxy(superuser):
    attacker = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.66")
    for n in range(LOGIN_FAILURES_PER_IP):
        attacker.post("/admin/login/", {"username": f"guess{n}", "password": "x"})
    locked = attacker.post("/admin/login/", {"username": "root", "password": "pw-for-tests-1"})
    assert locked.status_code == 429
    researcher = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.10")
    ok = researcher.post(
        "/admin/login/?next=/admin/", {"username": "root", "password": "pw-for-tests-1"}
    )
    assert ok.status_code == 302 and researcher.session["_auth_user_id"] == str(superuser.pk)
    assert LOGIN_FAILURES_PER_USER < LOGIN_FAILURES_PER_IP


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GEPPETTO_TRUSTED_PROXIES": "10.0.0.0/33"}, "GEPPETTO_TRUSTED_PROXIES: '10.0.0.0/33'"),
        ({"GEPPETTO_PROXY_HOPS": "two"}, "GEPPETTO_PROXY_HOPS: expected a whole number"),
    ],
)
def test_a_bad_proxy_setting_is_refused_at_start(tmp_path, env, message):
    import subprocess

    from tests.test_config import settings_in_subprocess

    with pytest.raises(subprocess.CalledProcessError) as info:
        settings_in_subprocess({"GEPPETTO_VAR_DIR": str(tmp_path), **env}, "1")
    assert message in info.value.stderr
