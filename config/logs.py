"""Log redaction: participant session tokens never reach a log line.

A session token alone lets anyone answer in that participant's name, and it is part
of every participant URL (``/s/p/<token>/…``), so request lines, referrers and
Django's "Not Found: /s/p/…" warnings would otherwise carry it. The filter is attached
to Django's console handler (settings.LOGGING) and to gunicorn's access and error logs
(deploy/gunicorn.conf.py). Pure standard library: gunicorn loads it before Django.
"""

from __future__ import annotations

import logging
import re

TOKEN_IN_PATH = re.compile(r"(/s/p/)[A-Za-z0-9_-]+")


def redact_tokens(text: str) -> str:
    """``text`` with every participant session token replaced by ``<token>``."""
    return TOKEN_IN_PATH.sub(r"\1<token>", text)


class RedactTokens(logging.Filter):
    """Render a record's message with session tokens redacted (the record is kept)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the message by its redacted rendering; never drops a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            return True
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
