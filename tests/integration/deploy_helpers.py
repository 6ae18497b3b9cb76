"""Shared by the deploy tests: run the CLI in-process like a user would, and ask moto what exists."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
import pytest

from eurosat_service.entrypoints import cli, deploy

REGION = "us-east-1"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/eurosat-service:{tag}"


@dataclass
class Moto:
    endpoint: str
    region: str = REGION

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region)

    def made_by(self, prefix: str) -> list[str]:
        """Every resource `up` makes for ``prefix``, looked up by name as a person would check."""
        found = []
        ecs, ec2, logs, iam = (self.client(s) for s in ("ecs", "ec2", "logs", "iam"))
        for cluster in ecs.describe_clusters(clusters=[f"{prefix}-cluster"])["clusters"]:
            if cluster["status"] == "ACTIVE":
                found.append(f"cluster {cluster['clusterName']}")
                services = ecs.describe_services(cluster=f"{prefix}-cluster", services=[f"{prefix}-api"])["services"]
                found += [f"service {s['serviceName']}" for s in services if s["status"] != "INACTIVE"]
        found += [f"task definition {a}" for a in
                  ecs.list_task_definitions(familyPrefix=f"{prefix}-api", status="ACTIVE")["taskDefinitionArns"]]
        groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{prefix}-http"]}])
        found += [f"security group {g['GroupId']}" for g in groups["SecurityGroups"]]
        found += [f"log group {g['logGroupName']}" for g in
                  logs.describe_log_groups(logGroupNamePrefix=f"/ecs/{prefix}-")["logGroups"]]
        found += [f"role {r['RoleName']}" for r in iam.list_roles(PathPrefix="/eurosat-service/")["Roles"]
                  if r["RoleName"].startswith(f"{prefix}-")]
        return found


def run_deploy(capsys, *argv: str, container=None) -> tuple[int, str, str]:
    """``cli.run(deploy.main)`` in-process: exit code, stdout and stderr as a user sees them."""
    with pytest.raises(SystemExit) as exited:
        cli.run(lambda: deploy.main(list(argv), container))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


class Patched:
    """The real adapter or client, except for the methods given (a failure moto cannot produce)."""

    def __init__(self, real, **methods) -> None:
        self._real = real
        self.__dict__.update(methods)

    def __getattr__(self, name):
        return getattr(self._real, name)
