import pytest
from django.core.cache import cache
from django.test import Client

from participants.security import LOGIN_FAILURES_PER_USER


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


def login(client, password):
    return client.post("/admin/login/?next=/admin/", {"username": "root", "password": password})


def test_admin_login_locks_out_after_repeated_failures(superuser):
    client = Client()
    for _ in range(LOGIN_FAILURES_PER_USER):
        failed = login(client, "wrong")
        assert failed.status_code == 200 and "Please enter the correct" in failed.content.decode()
    locked = login(client, "pw-for-tests-1")
    assert locked.status_code == 429 and locked["Retry-After"] == "900"
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    cache.clear()  # the lockout expires
    assert login(client, "pw-for-tests-1").status_code == 302
    assert client.session["_auth_user_id"] == str(superuser.pk)


def test_success_clears_the_failure_count(superuser):
    client = Client()
    for _ in range(LOGIN_FAILURES_PER_USER - 1):
        login(client, "wrong")
    assert login(client, "pw-for-tests-1").status_code == 302
    client.logout()
    for _ in range(LOGIN_FAILURES_PER_USER - 1):
        login(client, "wrong")
    assert login(client, "pw-for-tests-1").status_code == 302


def test_markdown_is_escaped_and_limited():
    from participants.markdown import render_markdown

    html = render_markdown("# Title\n\nLine one\nline *two* <script>x</script>\n\n- a **b**\n- c")
    assert html == (
        "<h2>Title</h2><p>Line one<br>line <em>two</em> &lt;script&gt;x&lt;/script&gt;</p>"
        "<ul><li>a <strong>b</strong></li><li>c</li></ul>"
    )


def test_rate_limits_count_in_redis_where_the_cache_lives(settings, monkeypatch):
    import uuid

    import redis

    from participants import security

    location = "redis://127.0.0.1:6379/13"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location}
    }
    monkeypatch.setattr(security, "_clock", lambda: 1_000_000.0)
    bucket = f"answer:test-{uuid.uuid4().hex}"
    key = f"participants:rl:{bucket}:{1_000_000 // 60}"
    client = redis.Redis.from_url(location)
    try:
        allowed = [security.hit(bucket, limit=3, window=60) for _ in range(5)]
        assert allowed == [True, True, True, False, False]
        full_key = cache.make_and_validate_key(key)
        assert int(client.get(full_key)) == 5 and 0 < client.ttl(full_key) <= 61
        assert cache.get(key) == 5  # the cache API reads the same counter
        # The next window counts from zero.
        monkeypatch.setattr(security, "_clock", lambda: 1_000_060.0)
        assert security.hit(bucket, limit=3, window=60) is True
    finally:
        client.delete(*client.keys(f"*{bucket}*"))
