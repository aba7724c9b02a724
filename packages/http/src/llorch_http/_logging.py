"""Service logs as JSON lines (HME-030) or a readable line per event, every string redacted (ORCH-3330)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from ._redact import redact, redact_value

# `redact` is re-exported: `llorch_http.redact` is the one redaction function of both services (ORCH-3330).
__all__ = ["JsonLines", "RedactingFormatter", "configure_logging", "redact"]


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, service, logger, `human`, and the record's `fields`."""

    def __init__(self, service: str, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.service = service
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "human": redact(record.getMessage(), self.secrets),
        }
        if action := getattr(record, "action", None):
            line["action"] = action
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            # Structured fields carry client input (model refs, session ids): redact them too (ORCH-3330).
            line.update({k: redact_value(v, self.secrets) for k, v in fields.items() if v is not None})
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info), self.secrets)
        return json.dumps(line, default=lambda value: redact(str(value), self.secrets))


class RedactingFormatter(logging.Formatter):
    """The pretty console format, passed through the same redaction as JSON lines (ORCH-3330)."""

    def __init__(self, fmt: str, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(fmt)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def configure_logging(service: str, *, json_lines: bool, level: str, secrets: tuple[str, ...] = ()) -> None:
    """Route every log record to stderr in the configured format (called once by each service's main).

    `secrets` (the configured token) are masked verbatim wherever they appear (ORCH-3326).
    """
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonLines(service, secrets))
    else:
        handler.setFormatter(RedactingFormatter(f"{service} %(levelname)s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per engine poll is noise
