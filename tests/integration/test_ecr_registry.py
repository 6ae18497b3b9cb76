"""The ECR registry adapter against a real moto server over HTTP, and the `image` command's
refusals that need no container engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from eurosat_service.adapters.aws_session import make_client, make_session
from eurosat_service.adapters.ecr_registry import EcrRegistry, lifecycle_policy
from eurosat_service.domain.errors import BuildError, CloudAccessError

TAGS = {"project": "eurosat-service", "eurosat-service:deployment": "eurosat-test"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ecr(aws):
    return make_client(make_session("us-east-1"), "ecr", endpoint_url=aws)


def test_creates_the_repository_with_scanning_immutable_tags_lifecycle_and_tags(ecr):
    registry = EcrRegistry(ecr)

    first = registry.ensure_repository("eurosat-service", TAGS, keep_images=7)
    again = registry.ensure_repository("eurosat-service", TAGS, keep_images=7)

    assert first.created and not again.created and first.id == again.id
    assert first.id == "123456789012.dkr.ecr.us-east-1.amazonaws.com/eurosat-service"
    (repo,) = ecr.describe_repositories(repositoryNames=["eurosat-service"])["repositories"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    policy = json.loads(ecr.get_lifecycle_policy(repositoryName="eurosat-service")["lifecyclePolicyText"])
    assert policy == json.loads(lifecycle_policy(7))
    assert policy["rules"][0]["selection"]["countNumber"] == 7
    tags = {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]}
    assert tags == TAGS


def test_completes_a_repository_left_without_its_lifecycle_policy(ecr):
    ecr.create_repository(repositoryName="eurosat-service", tags=[{"Key": k, "Value": v} for k, v in TAGS.items()])

    result = EcrRegistry(ecr).ensure_repository("eurosat-service", TAGS, keep_images=3)

    assert not result.created
    (repo,) = ecr.describe_repositories(repositoryNames=["eurosat-service"])["repositories"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert json.loads(ecr.get_lifecycle_policy(repositoryName="eurosat-service")["lifecyclePolicyText"])


def test_leaves_a_foreign_repository_settings_alone(ecr):
    ecr.create_repository(repositoryName="someone-elses", imageTagMutability="MUTABLE")

    result = EcrRegistry(ecr).ensure_repository("someone-elses", TAGS, keep_images=3)

    (repo,) = ecr.describe_repositories(repositoryNames=["someone-elses"])["repositories"]
    assert not result.created and repo["imageTagMutability"] == "MUTABLE"


def test_login_decodes_the_token_and_the_registry_url_replaces_the_host(ecr):
    plain = EcrRegistry(ecr).login()
    stand_in = EcrRegistry(ecr, registry_url="http://127.0.0.1:5999").login()

    assert (plain.registry, plain.username, plain.password, plain.plain_http) == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com", "AWS", "123456789012-auth-token", False)
    assert (stand_in.registry, stand_in.plain_http) == ("127.0.0.1:5999", True)
    assert "auth-token" not in repr(stand_in)
    uri = EcrRegistry(ecr, registry_url="127.0.0.1:5999").ensure_repository("eurosat-service", TAGS, 3).id
    assert uri == "127.0.0.1:5999/eurosat-service"


def test_find_digest_asks_ecr_for_the_tag(ecr):
    registry = EcrRegistry(ecr)
    uri = registry.ensure_repository("eurosat-service", TAGS, 3).id
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {}, "layers": []})
    pushed = ecr.put_image(repositoryName="eurosat-service", imageManifest=manifest, imageTag="abc-v1")["image"]

    assert registry.find_digest(uri, "abc-v1", registry.login()) == pushed["imageId"]["imageDigest"]
    assert registry.find_digest(uri, "missing", registry.login()) is None


def test_an_unreachable_stand_in_registry_is_a_clear_error(ecr):
    registry = EcrRegistry(ecr, registry_url="http://127.0.0.1:9")
    with pytest.raises(BuildError, match="cannot reach registry 127.0.0.1:9"):
        registry.find_digest("127.0.0.1:9/eurosat-service", "abc-v1", registry.login())


@pytest.mark.parametrize("code, message", [
    ("ExpiredTokenException", "credentials expired"),
    ("UnrecognizedClientException", "rejected the credentials"),
    ("AccessDeniedException", "access denied"),
])
def test_credential_failures_become_clear_errors(code, message):
    client = boto3.client("ecr", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_client_error("create_repository", service_error_code=code, http_status_code=400)
        with pytest.raises(CloudAccessError, match=message):
            EcrRegistry(client).ensure_repository("eurosat-service", TAGS, 3)


def run_image_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eurosat_service.entrypoints.deploy_image", *args],
                          capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


def test_without_any_build_tool_the_command_fails_before_creating_anything(aws, ecr, tmp_path):
    context = tmp_path / "context"
    (context / "models" / "eurosat-resnet18").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\n")
    (context / "models" / "eurosat-resnet18" / "LATEST").write_text("v1\n")
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "DOCKER_HOST": "unix:///nonexistent.sock"}

    done = run_image_command("--context", str(context), "--revision", "abc123", env=env)

    assert done.returncode == 2, done.stderr
    assert "error: no container build tool" in done.stderr and "Traceback" not in done.stderr
    assert ecr.describe_repositories()["repositories"] == []


def test_without_a_shipped_model_the_command_says_how_to_get_one(aws, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")

    done = run_image_command("--context", str(tmp_path), "--revision", "abc123", env=dict(os.environ))

    assert done.returncode == 2
    assert "bakes in models/eurosat-resnet18" in done.stderr and "Traceback" not in done.stderr
