"""A boto3 client made on first use: creating one parses its service model (about a second for
EC2 on a busy machine), so a command pays only for the AWS services it actually calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eurosat_service.adapters import aws_session


class LazyAwsClient:
    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._make()
        return getattr(self._client, name)


def lazy_client(session: Callable[[], Any], service: str, endpoint_url: str | None = None) -> LazyAwsClient:
    """``session`` is a provider, so an unknown profile fails at first use, inside an adapter."""
    return LazyAwsClient(lambda: aws_session.make_client(session(), service, endpoint_url))
