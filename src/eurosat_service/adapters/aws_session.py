"""boto3 sessions and clients with timeouts, retries, a region and an optional endpoint (moto).

With no region given, boto3's own choice applies (``AWS_REGION``, ``AWS_DEFAULT_REGION``, then
the profile's ``region`` in ~/.aws/config), as for the AWS CLI: a user whose profile says
eu-west-1 must not deploy to another region by default.

boto3 is imported on first use: it takes about 0.3 s, which the API serving a local model and
the training job should not pay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eurosat_service.adapters.aws_errors import NO_REGION, PROFILE_ATTRIBUTE, aws_errors
from eurosat_service.domain.errors import CloudAccessError

if TYPE_CHECKING:
    import boto3

# The deploy commands' calls (ECS, EC2, IAM, Logs, ECR, STS) answer in well under a second; the
# slowest take a few. botocore's defaults (60 s read timeout, retried) made an endpoint that
# accepts connections but never answers a silent 6-minute hang per call; this fails it in about
# a minute: 3 attempts of at most 5 s to connect plus 20 s without a byte, with short backoffs.
# The image push is not a boto3 call (the build tool pushes; ECR only issues the login token).
CONTROL_PLANE = dict(connect_timeout=5, read_timeout=20, retries={"mode": "standard", "total_max_attempts": 3})
# S3 moves model files of tens of MB, possibly over a slow link: what it always had.
DATA_PLANE = dict(connect_timeout=10, read_timeout=60, retries={"mode": "standard", "total_max_attempts": 6})
DATA_PLANE_SERVICES = frozenset({"s3"})


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

    settings = DATA_PLANE if service in DATA_PLANE_SERVICES else CONTROL_PLANE
    client = session.client(service, endpoint_url=endpoint_url or None, config=Config(**settings))
    client.meta.events.register("after-call-error", _noting_profile(session.profile_name))
    return client


def _noting_profile(profile: str) -> Callable[..., None]:
    """Credentials load on a client's first call, so an SSO login that is missing or expired fails
    there; the error names no profile, and ``aws sso login`` needs one: note it on the error."""

    def note(exception: BaseException | None = None, **_: Any) -> None:
        if exception is not None:
            with contextlib.suppress(AttributeError, TypeError):  # a handler that raises would replace the error
                setattr(exception, PROFILE_ATTRIBUTE, profile)

    return note
