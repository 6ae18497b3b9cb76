"""Small parsers for the deploy job's flags, kept apart so they load without the container."""

from __future__ import annotations

import argparse
import math
import re
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

from eurosat_service.domain.container_image import check_repository_name
from eurosat_service.domain.errors import BuildError, InvalidDeploymentConfig

_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidDeploymentConfig(f"--env expects KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def at_least_one(text: str) -> int:
    """An argparse type for counts: ``--limit -1`` would otherwise crash the log reader (a deque's
    maxlen), and ``--limit 0`` would print nothing while saying there were no events."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seconds(text: str) -> float:
    """An argparse type for a wait: a positive, finite number (``nan`` or ``inf`` waited forever)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def repository_name(text: str) -> str:
    """An argparse type for ``--delete-repository``: a name ECR would refuse is a usage error before
    `down` deletes anything ("" is the flag given without a name)."""
    if text:
        try:
            check_repository_name(text)
        except BuildError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def http_url(text: str) -> str:
    """An argparse type for ``smoke --url``: one that can never answer would be retried for --wait."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises for a port that is not a number, or above 65535)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a usable URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL with a host")
    return text


def parse_since(text: str, now: float | None = None) -> int:
    """``30s``/``10m``/``2h``/``1d`` ago, or an ISO 8601 time; epoch milliseconds. CloudWatch
    refuses a time before 1970 as a parameter error, which would read as an AWS failure."""
    now = time.time() if now is None else now
    match = _SINCE.match(text.strip())
    if match:
        since = int((now - float(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]) * 1000)
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidDeploymentConfig(f"--since {text!r}: use 30s, 10m, 2h, 1d or an ISO time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        since = int(moment.timestamp() * 1000)
    if since < 0:
        raise InvalidDeploymentConfig(f"--since {text!r}: that is before 1970; CloudWatch keeps nothing older")
    return since
