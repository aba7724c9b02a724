"""Service logs as JSON lines (HME-030) or a readable line per event, with secrets redacted (ORCH-3037)."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_SECRET = re.compile(r"(?i)(bearer\s+|(?:api[_-]?key|token|secret|password)[=:]\s*)[^\s\"',;]+")


def redact(text: str) -> str:
    """Mask bearer tokens and `key=value` secrets in a message."""
    return _SECRET.sub(r"\1****", text)


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, service, logger, `human`, and the record's `fields`."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "human": redact(record.getMessage()),
        }
        if action := getattr(record, "action", None):
            line["action"] = action
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update({k: v for k, v in fields.items() if v is not None})
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


def configure_logging(service: str, *, json_lines: bool, level: str) -> None:
    """Route every log record to stderr in the configured format (called once by each service's main)."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonLines(service))
    else:
        handler.setFormatter(logging.Formatter(f"{service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per engine poll is noise
