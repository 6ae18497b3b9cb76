"""CloudWatch Logs: the service's log group (created with a short retention) and reading it."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from eurosat_service.adapters.aws_errors import error_code, translates_aws_errors
from eurosat_service.domain.deployment import Ensured, LogEvent, carries
from eurosat_service.domain.errors import DeploymentError

MAX_PAGES = 200  # bounds one read of a chatty group; `--since` narrows it further


@translates_aws_errors
class CloudWatchLogs:
    """Implements both ``LogGroups`` and ``LogReader``."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def ensure(self, name: str, retention_days: int, tags: Mapping[str, str]) -> Ensured:
        group = self._describe(name)
        created = group is None
        if group is None:
            self.client.create_log_group(logGroupName=name, tags=dict(tags))
        elif not carries(self._tags(group), tags):
            raise DeploymentError(f"log group {name} exists but was not created by this job "
                                  "(its tags differ); choose another --name-prefix")
        if created or group.get("retentionInDays") != retention_days:
            self.client.put_retention_policy(logGroupName=name, retentionInDays=retention_days)
        return Ensured(name, created)

    def find(self, name_prefix: str, tags: Mapping[str, str]) -> list[str]:
        found = []
        for page in self.client.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name_prefix):
            found += [g["logGroupName"] for g in page["logGroups"] if carries(self._tags(g), tags)]
        return found

    def delete(self, name: str) -> bool:
        try:
            self.client.delete_log_group(logGroupName=name)
            return True
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise

    def exists(self, group: str) -> bool:
        return self._describe(group) is not None

    def events(self, group: str, start_ms: int, limit: int = 1000) -> list[LogEvent]:
        """The latest ``limit`` events from ``start_ms`` on, oldest first."""
        latest: deque[LogEvent] = deque(maxlen=limit)
        pages = self.client.get_paginator("filter_log_events").paginate(logGroupName=group, startTime=start_ms)
        for n, page in enumerate(pages):
            latest.extend(LogEvent(e["timestamp"], e.get("logStreamName", ""), e["message"].rstrip("\n"),
                                   e.get("eventId", "")) for e in page["events"])
            if n + 1 >= MAX_PAGES:
                break
        return sorted(latest, key=lambda e: e.timestamp_ms)

    def _describe(self, name: str) -> dict | None:
        for page in self.client.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
            for group in page["logGroups"]:
                if group["logGroupName"] == name:
                    return group
        return None

    def _tags(self, group: Mapping[str, Any]) -> dict[str, str]:
        arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
        return self.client.list_tags_for_resource(resourceArn=arn).get("tags", {})
