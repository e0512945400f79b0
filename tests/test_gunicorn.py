"""The scaled-mode web server: gunicorn with deploy/gunicorn.conf.py serves Geppetto."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_serves_the_login_page_and_static_files(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "GEPPETTO_VAR_DIR": str(tmp_path),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
    }
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                response = httpx.get(f"{url}/admin/login/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert response.status_code == 200
        assert "Log in" in response.text
        css = httpx.get(f"{url}/static/admin/css/base.css", timeout=5)
        assert css.status_code == 200
        assert "body" in css.text
        assert httpx.get(f"{url}/api/v1/tasks/", timeout=5).status_code in (401, 403)
    finally:
        server.terminate()
        server.wait(10)
