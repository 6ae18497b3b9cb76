"""The AWS account behind the credentials, via STS: the cheapest call that proves they work."""

from __future__ import annotations

from typing import Any

from eurosat_service.adapters.aws_errors import translates_aws_errors


@translates_aws_errors
class StsCloudAccount:
    def __init__(self, client: Any) -> None:
        self.client = client
        self._account: str | None = None

    def account_id(self) -> str:
        if self._account is None:
            self._account = self.client.get_caller_identity()["Account"]
        return self._account
