"""gunicorn settings for the scaled mode: ``gunicorn -c deploy/gunicorn.conf.py config.wsgi``.

Every value can be overridden from the environment (GUNICORN_BIND, GUNICORN_WORKERS, …).
Static files are served by whitenoise from ``STATIC_ROOT`` after ``manage.py collectstatic``.
"""

import multiprocessing
import os
import sys
from pathlib import Path

from gunicorn.glogging import Logger

# config/logs.py is plain Python: importable before Django is set up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from config.logs import RedactTokens

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 2))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
# Longer than the pause between two answers: a connection closed while idle makes the
# participant's next POST fail on a dead socket and wait for its retry.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
graceful_timeout = 30
# Recycle workers now and then so a slow leak cannot grow without bound; rarely, since
# a recycled worker drops its keep-alive connections (clients then retry their request).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 20000))
max_requests_jitter = 2000
accesslog = "-"
errorlog = "-"


class RedactingLogger(Logger):
    """gunicorn's logger with participant session tokens removed from every line.

    A token alone lets anyone answer as that participant; request lines and referrers
    of participant pages carry it (``/s/p/<token>/``).
    """

    def setup(self, cfg):
        """Set up gunicorn's logs, then filter both."""
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactTokens) for f in log.filters):
                log.addFilter(RedactTokens())


logger_class = RedactingLogger
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
