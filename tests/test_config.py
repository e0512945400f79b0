"""Settings from the environment: broker selection, database selection, the embedded worker."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import dramatiq
import pytest

from config.broker import dramatiq_broker_settings, start_embedded_worker, stop_embedded_worker

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("url", "broker"),
    [
        ("", "dramatiq.brokers.stub.StubBroker"),
        ("redis://127.0.0.1:6379/0", "dramatiq.brokers.redis.RedisBroker"),
        ("amqp://guest:guest@127.0.0.1:5672/", "dramatiq.brokers.rabbitmq.RabbitmqBroker"),
    ],
)
def test_broker_from_url(url, broker):
    conf = dramatiq_broker_settings(url)
    assert conf["BROKER"] == broker
    assert conf.get("OPTIONS", {}).get("url", "") == url


def test_unknown_broker_scheme_is_refused():
    with pytest.raises(ValueError, match="BROKER_URL must start with redis://"):
        dramatiq_broker_settings("kafka://x")


def settings_in_subprocess(env: dict, expr: str) -> str:
    code = f"import django, os; django.setup(); from django.conf import settings; print({expr})"
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "BROKER_URL", "CACHE_URL"}
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_embedded_defaults_to_sqlite_with_wal_and_immediate_transactions(tmp_path):
    out = settings_in_subprocess(
        {"GEPPETTO_VAR_DIR": str(tmp_path)},
        "settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['NAME'], "
        "settings.DATABASES['default']['OPTIONS']['transaction_mode'], "
        "settings.DATABASES['default']['OPTIONS']['timeout'], settings.DRAMATIQ_BROKER['BROKER']",
    )
    assert out == (
        f"django.db.backends.sqlite3 {tmp_path}/geppetto.sqlite3 IMMEDIATE 20 "
        "dramatiq.brokers.stub.StubBroker"
    )
    mode = settings_in_subprocess(
        {"GEPPETTO_VAR_DIR": str(tmp_path)},
        "__import__('django.db').db.connection.cursor()"
        ".execute('pragma journal_mode').fetchone()[0]",
    )
    assert mode == "wal"
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_database_url_selects_postgres(tmp_path):
    out = settings_in_subprocess(
        {
            "GEPPETTO_VAR_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/somedb",
            "BROKER_URL": "redis://127.0.0.1:6379/3",
        },
        "settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['NAME'], "
        "settings.DRAMATIQ_BROKER['BROKER']",
    )
    assert out == "django.db.backends.postgresql somedb dramatiq.brokers.redis.RedisBroker"


def test_embedded_worker_runs_actors_in_process():
    done = threading.Event()
    seen = []

    @dramatiq.actor(queue_name="embedded-test")
    def record(value):
        seen.append(value)
        done.set()

    worker = start_embedded_worker(threads=1)
    try:
        assert start_embedded_worker() is worker  # one worker per process
        record.send(41)
        assert done.wait(10), "the in-process worker did not run the message"
        assert seen == [41]
    finally:
        stop_embedded_worker()


def test_cache_url_selects_a_shared_redis_cache(tmp_path):
    out = settings_in_subprocess(
        {"GEPPETTO_VAR_DIR": str(tmp_path), "CACHE_URL": "redis://127.0.0.1:6379/13"},
        "settings.CACHES['default']['BACKEND'], "
        "__import__('django.core.cache').core.cache.cache.set('k', 7) or "
        "__import__('django.core.cache').core.cache.cache.get('k')",
    )
    assert out == "django.core.cache.backends.redis.RedisCache 7"
    default = settings_in_subprocess(
        {"GEPPETTO_VAR_DIR": str(tmp_path)}, "settings.CACHES['default']['BACKEND']"
    )
    assert default == "django.core.cache.backends.locmem.LocMemCache"
