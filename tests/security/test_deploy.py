"""Item 6: production settings from the environment give zero `check --deploy` warnings."""

import os
import secrets
import subprocess
import sys

from tests.test_config import ROOT, settings_in_subprocess


def check_deploy(tmp_path, **env) -> str:
    clean = {
        k: v
        for k, v in os.environ.items()
        # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; no deployment does.
        if k not in {"DATABASE_URL", "BROKER_URL", "CACHE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
        and not k.startswith("GEPPETTO_")
    }
    production = {
        "GEPPETTO_VAR_DIR": str(tmp_path),
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "lab.example.org",
        "DEBUG": "false",
        **env,
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **production},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout + out.stderr


def test_https_from_the_environment_gives_a_clean_deploy_check(tmp_path):
    out = check_deploy(tmp_path, GEPPETTO_HTTPS="true")
    assert "System check identified no issues (0 silenced)." in out, out


def test_without_https_the_deploy_check_names_what_is_missing(tmp_path):
    out = check_deploy(tmp_path)
    for warning in ("W004", "W008", "W012", "W016"):
        assert f"security.{warning}" in out


def test_https_settings_and_their_overrides(tmp_path):
    env = {"GEPPETTO_VAR_DIR": str(tmp_path), "GEPPETTO_HTTPS": "1"}
    names = (
        "settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE, "
        "settings.CSRF_COOKIE_SECURE, settings.SECURE_HSTS_SECONDS, "
        "settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, settings.SECURE_HSTS_PRELOAD, "
        "getattr(settings, 'SECURE_PROXY_SSL_HEADER', None)"
    )
    assert settings_in_subprocess(env, names) == "True True True 31536000 True True None"
    overridden = {
        **env,
        "GEPPETTO_SSL_REDIRECT": "false",
        "GEPPETTO_HSTS_SECONDS": "3600",
        "GEPPETTO_HSTS_PRELOAD": "no",
        "GEPPETTO_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    }
    assert settings_in_subprocess(overridden, names) == (
        "False True True 3600 True False ('HTTP_X_FORWARDED_PROTO', 'https')"
    )
    embedded = {"GEPPETTO_VAR_DIR": str(tmp_path)}
    assert settings_in_subprocess(embedded, names) == "False False False 0 False False None"
