"""boto3 sessions and clients with retries, a fixed region and an optional endpoint (moto)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

RETRIES = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60)


def make_session(region: str, profile: str | None = None) -> boto3.session.Session:
    return boto3.session.Session(region_name=region, profile_name=profile or None)


def make_client(session: boto3.session.Session, service: str, endpoint_url: str | None = None) -> Any:
    return session.client(service, endpoint_url=endpoint_url or None, config=RETRIES)
