"""boto3 sessions and clients with retries, a fixed region and an optional endpoint (moto).

boto3 is imported on first use: it takes about 0.3 s, which the API serving a local model and
the training job should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import boto3

RETRIES = dict(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60)


def make_session(region: str, profile: str | None = None) -> boto3.session.Session:
    import boto3

    return boto3.session.Session(region_name=region, profile_name=profile or None)


def make_client(session: boto3.session.Session, service: str, endpoint_url: str | None = None) -> Any:
    from botocore.config import Config

    return session.client(service, endpoint_url=endpoint_url or None, config=Config(**RETRIES))
