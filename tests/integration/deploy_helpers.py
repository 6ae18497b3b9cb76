"""Shared by the deploy tests: run the CLI in-process like a user would, and ask moto what exists."""

from __future__ import annotations

import uuid
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


@pytest.fixture
def moto(moto_server, monkeypatch, tmp_path) -> Moto:
    """The ``aws`` fixture's environment without its reset (a reset after IAM use costs seconds):
    each test deploys under its own name prefix instead. HOME is a fresh folder, so the
    `image` command's record of the last pushed image starts empty."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "EUROSAT_AWS_REGION": REGION, "EUROSAT_AWS_ENDPOINT_URL": moto_server,
        "EUROSAT_DEPLOY_POLL_SECONDS": "0.05", "EUROSAT_DEPLOY_WAIT_TIMEOUT": "30", "HOME": str(tmp_path / "home"),
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "EUROSAT_AWS_PROFILE", "EUROSAT_DEPLOY_NAME_PREFIX", "EUROSAT_DEPLOY_MODEL_URI"):
        monkeypatch.delenv(key, raising=False)
    return Moto(moto_server)


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def run_deploy(capsys, *argv: str, container=None) -> tuple[int, str, str]:
    """``cli.run(deploy.main)`` in-process: exit code, stdout and stderr as a user sees them."""
    with pytest.raises(SystemExit) as exited:
        cli.run(lambda: deploy.main(list(argv), container))
    out, err = capsys.readouterr()
    return exited.value.code, out, err
