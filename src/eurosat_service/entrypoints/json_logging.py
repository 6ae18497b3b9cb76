"""One JSON object per log line (what CloudWatch Logs Insights parses without a pattern).

A record's ``extra={"fields": {...}}`` become top-level keys; a traceback becomes one escaped
string, so a log line is always exactly one line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from eurosat_service.entrypoints.cli import quiet_libraries


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_json_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for our loggers and uvicorn's (its access log is replaced by
    ``RequestLog``'s richer line). Written synchronously: a queue and writer thread would save
    the event loop a few microseconds a line but lose the last lines when SIGTERM ends the
    process, and those say how the shutdown went. Python's warnings are logged too (logger
    ``py.warnings``), or a library's warning would be raw multi-line text amid the JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    quiet_libraries("botocore", "boto3", "urllib3")
    # Pillow only speaks about the upload it decodes ("More samples per pixel than can be decoded"
    # at ERROR), which the request's own line reports as a 415/422: a client's bad file must not
    # page whoever alerts on level=error.
    logging.getLogger("PIL").setLevel(logging.CRITICAL)
