"""Django settings for Geppetto.

Everything comes from the environment, with defaults that run the embedded mode
(SQLite in ``var/`` and an in-process worker) with nothing else installed.
"""

import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url

from config.broker import dramatiq_broker_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GEPPETTO_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)
# It holds the secret key and the SQLite database: readable by the server's user only.
if VAR_DIR.stat().st_uid == os.getuid():
    VAR_DIR.chmod(0o700)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in var/."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        # Created with mode 600, so the key is never readable by others, even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _env_bool("DEBUG", False)
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS")

# --- HTTPS -----------------------------------------------------------------------
# GEPPETTO_HTTPS=true for a site served over https: redirect http, secure cookies, HSTS.
# `manage.py check --deploy` is then clean. Behind a proxy that terminates TLS, either
# gunicorn's forwarded_allow_ips (deploy/gunicorn.conf.py) or GEPPETTO_PROXY_SSL_HEADER
# tells Django that the original request was https.
HTTPS = _env_bool("GEPPETTO_HTTPS", False)
SECURE_SSL_REDIRECT = _env_bool("GEPPETTO_SSL_REDIRECT", HTTPS)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = int(os.environ.get("GEPPETTO_HSTS_SECONDS", 31536000 if HTTPS else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("GEPPETTO_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = _env_bool("GEPPETTO_HSTS_PRELOAD", HTTPS)
if _proxy_ssl_header := os.environ.get("GEPPETTO_PROXY_SSL_HEADER", "").strip():
    # e.g. X-Forwarded-Proto: only safe when the proxy always sets (or strips) it.
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_dramatiq",
    "benchmark",
    "participants",
    "scoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
# No DATABASE_URL: embedded SQLite in var/. WAL lets readers run beside the
# writer; IMMEDIATE transactions take the write lock up front, so two writers
# wait on `timeout` instead of failing with "database is locked" mid-transaction.
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    # SQLite creates its -wal and -shm files with the database file's mode: make it 600.
    _sqlite = VAR_DIR / "geppetto.sqlite3"
    _sqlite.touch(mode=0o600, exist_ok=True)
    if _sqlite.stat().st_uid == os.getuid():
        _sqlite.chmod(0o600)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "geppetto.sqlite3",
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA foreign_keys=ON;"
                    "PRAGMA busy_timeout=20000;"
                ),
            },
            # A file, not memory: tests start worker subprocesses that share the database.
            # One per test process, so parallel test runs never share it.
            "TEST": {"NAME": str(VAR_DIR / f"test-geppetto-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Broker ---------------------------------------------------------------
BROKER_URL = os.environ.get("BROKER_URL", "")
DRAMATIQ_BROKER = dramatiq_broker_settings(BROKER_URL)
DRAMATIQ_AUTODISCOVER_MODULES = ["actors"]
# A worker holds a unit for this long after its last sign of life (a thread renews it
# while the unit is worked on); a dead worker's units are picked up again once it passes.
UNIT_LEASE_SECONDS = int(os.environ.get("GEPPETTO_UNIT_LEASE_SECONDS", 600))
# Every worker process wakes this often to reconcile (one of them does it per period).
RECONCILE_SECONDS = float(
    os.environ.get("GEPPETTO_RECONCILE_SECONDS", min(60.0, UNIT_LEASE_SECONDS / 2))
)
# A unit whose work raised an error is tried again after this, then twice as long, ….
RETRY_BACKOFF_SECONDS = float(os.environ.get("GEPPETTO_RETRY_BACKOFF_SECONDS", 2))

# --- Model endpoints ---------------------------------------------------------
# A worker reads an endpoint's API key only from a variable whose name starts with one
# of these, and sends requests only to these hosts (names, ".domain" for a domain and
# its subdomains, or networks such as 10.0.0.0/8): other secrets never leave a worker.
API_KEY_PREFIXES = _env_list(
    "GEPPETTO_API_KEY_PREFIXES", "GEPPETTO_KEY_,OPENAI_API_KEY,ANTHROPIC_API_KEY"
)
ENDPOINT_HOSTS = _env_list(
    "GEPPETTO_ENDPOINT_HOSTS", "127.0.0.1,localhost,::1,api.openai.com,api.anthropic.com"
)

# --- Cache ----------------------------------------------------------------
# Rate limits and the admin login lockout count in the cache. One process (embedded)
# can count in memory; several gunicorn processes must share a cache: CACHE_URL=redis://…
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    if not CACHE_URL.startswith(("redis://", "rediss://")):
        raise ValueError(f"CACHE_URL must start with redis:// or rediss://, got {CACHE_URL!r}")
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Participant rate limits (requests per minute): "start=120,answer=240" overrides the
# defaults in participants/views.py. A lab whose participants share one address (a
# classroom behind NAT) raises `start`, which counts per address.
PARTICIPANT_RATE_LIMITS = {}
for _pair in _env_list("GEPPETTO_RATE_LIMITS"):
    _scope, _, _limit = _pair.partition("=")
    if not _limit.strip().isdigit():
        raise ValueError(f"GEPPETTO_RATE_LIMITS: expected scope=number, got {_pair!r}")
    PARTICIPANT_RATE_LIMITS[_scope.strip()] = int(_limit)

# Behind a reverse proxy every request comes from the proxy's address. The client's own
# address (for rate limits, the admin lockout and the duplicate-device hash) is then read
# from X-Forwarded-For, but only as far as the trusted proxies: either their networks
# ("10.0.0.0/8,127.0.0.1") or the number of proxies in front (hops). Unset: REMOTE_ADDR.
TRUSTED_PROXIES = _env_list("GEPPETTO_TRUSTED_PROXIES")
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ValueError(
            f"GEPPETTO_TRUSTED_PROXIES: {_proxy!r} is not an address or network"
        ) from None
if not os.environ.get("GEPPETTO_PROXY_HOPS", "0").strip().isdigit():
    raise ValueError("GEPPETTO_PROXY_HOPS: expected a whole number of proxies")
PROXY_HOPS = int(os.environ.get("GEPPETTO_PROXY_HOPS", "0"))

# A session that has not consented this many minutes after the link was opened gives its
# place back (it ends as timed out), so invented platform ids cannot fill a study.
CONSENT_HOLD_MINUTES = int(os.environ.get("GEPPETTO_CONSENT_HOLD_MINUTES", 10))

# --- Auth, i18n, static ---------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]  # site-wide files (the start page)
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise serves from here after collectstatic
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Psych-201 uploads can be large (the dezfouli file is 7.5 MB); the admin
# upload streams to a temporary file above this size instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
PSYCH201_MAX_UPLOAD_BYTES = int(os.environ.get("PSYCH201_MAX_UPLOAD_BYTES", 200 * 1024 * 1024))
PSYCH201_MAX_LINE_BYTES = int(os.environ.get("PSYCH201_MAX_LINE_BYTES", 32 * 1024 * 1024))

# --- API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "benchmark.api.pages.Pages",
    "DEFAULT_FILTER_BACKENDS": [
        "benchmark.api.strict.StrictQueryParameters",
        "django_filters.rest_framework.DjangoFilterBackend",
        "benchmark.api.strict.Search",
        "benchmark.api.strict.Ordering",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Geppetto API",
    "DESCRIPTION": "Tasks, human datasets and transcripts of a Geppetto server.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "benchmark.api.schema.add_error_responses",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Participant URLs carry the session token; no log line may (config/logs.py).
    "filters": {"redact_tokens": {"()": "config.logs.RedactTokens"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_tokens"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
