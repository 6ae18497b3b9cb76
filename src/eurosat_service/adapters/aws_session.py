"""boto3 sessions and clients with retries, a region and an optional endpoint (moto).

With no region given, boto3's own choice applies (``AWS_REGION``, ``AWS_DEFAULT_REGION``, then
the profile's ``region`` in ~/.aws/config), as for the AWS CLI: a user whose profile says
eu-west-1 must not deploy to another region by default.

boto3 is imported on first use: it takes about 0.3 s, which the API serving a local model and
the training job should not pay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eurosat_service.adapters.aws_errors import NO_REGION, aws_errors
from eurosat_service.domain.errors import CloudAccessError

if TYPE_CHECKING:
    import boto3

RETRIES = dict(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60)


def make_session(region: str | None = None, profile: str | None = None) -> boto3.session.Session:
    import boto3

    with aws_errors("opening the AWS session"):  # an unknown --profile
        return boto3.session.Session(region_name=region or None, profile_name=profile or None)


def session_region(session: Callable[[], boto3.session.Session]) -> str:
    """The region every client of ``session`` uses; one clear error when none is configured."""
    with aws_errors("reading the AWS region"):
        region = session().region_name
    if not region:
        raise CloudAccessError(NO_REGION)
    return region


def make_client(session: boto3.session.Session, service: str, endpoint_url: str | None = None) -> Any:
    from botocore.config import Config

    return session.client(service, endpoint_url=endpoint_url or None, config=Config(**RETRIES))
