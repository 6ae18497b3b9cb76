"""Deployment value objects: Fargate sizes, prices, names, tags and what a spec puts in the task."""

from __future__ import annotations

import pytest

from eurosat_service.domain.deployment import (
    FARGATE_SIZES,
    LIST_PRICES,
    DeploymentNames,
    DeploymentSpec,
    EcrImage,
    ServiceState,
    check_fargate_size,
    prices_for,
)
from eurosat_service.domain.errors import InvalidDeploymentConfig
from eurosat_service.domain.model_uri import S3Model


def spec(**kw) -> DeploymentSpec:
    return DeploymentSpec(names=DeploymentNames(kw.pop("prefix", "eurosat")), region="us-east-1",
                          image_uri=kw.pop("image_uri", "img:1"), **kw)


@pytest.mark.parametrize("cpu, memory", [(256, 512), (256, 2048), (512, 4096), (1024, 8192), (4096, 30720),
                                         (8192, 16384), (16384, 122880)])
def test_valid_fargate_sizes_pass(cpu, memory):
    check_fargate_size(cpu, memory)


@pytest.mark.parametrize("cpu, memory, hint", [
    (256, 4096, "512, 1024, 2048"), (512, 512, "1024, 2048, 3072, 4096"), (1024, 1536, "2048"),
    (8192, 17408, "16384, 20480"), (300, 512, "256, 512, 1024"),
])
def test_invalid_fargate_sizes_name_the_allowed_values(cpu, memory, hint):
    with pytest.raises(InvalidDeploymentConfig, match=hint):
        check_fargate_size(cpu, memory)


def test_the_size_table_matches_fargate_ranges():
    assert FARGATE_SIZES[256] == (512, 1024, 2048)
    assert FARGATE_SIZES[4096][0] == 8192 and FARGATE_SIZES[4096][-1] == 30720
    assert len(FARGATE_SIZES[16384]) == 12  # 32 GB to 120 GB in 8 GB steps


def test_a_spec_refuses_a_bad_size_before_anything_else():
    with pytest.raises(InvalidDeploymentConfig, match="256 CPU units with 1536 MiB"):
        spec(cpu=256, memory=1536)


@pytest.mark.parametrize("bad", [{"desired_count": 0}, {"log_retention_days": 10}, {"environment": {"1X": "y"}}])
def test_a_spec_refuses_other_bad_settings(bad):
    with pytest.raises(InvalidDeploymentConfig):
        spec(**bad)


def test_default_size_costs_the_list_price_per_hour_and_month():
    cost = spec().cost(prices_for("us-east-1"))
    assert cost.compute_hourly == pytest.approx(0.25 * 0.04048 + 0.5 * 0.004445)  # 0.0123425
    assert cost.ipv4_hourly == pytest.approx(0.005)
    assert cost.hourly == pytest.approx(0.0173425)
    assert cost.monthly == pytest.approx(0.0173425 * 730)
    text = "\n".join(cost.lines())
    assert "$0.0173 per hour" in text and "$12.66 per month" in text and "not in the AWS free tier" in text


def test_cost_scales_with_tasks_and_size():
    cost = spec(cpu=1024, memory=2048, desired_count=2).cost(LIST_PRICES["us-east-1"])
    assert cost.hourly == pytest.approx(2 * (0.04048 + 2 * 0.004445 + 0.005))


def test_prices_are_overridable_per_region_and_labelled_when_guessed():
    assert prices_for("eu-west-3").vcpu_hour == LIST_PRICES["us-east-1"].vcpu_hour
    assert "no price recorded for eu-west-3" in prices_for("eu-west-3").source
    custom = prices_for("eu-central-1", {"eu-central-1": {"vcpu_hour": 0.05, "gb_hour": 0.006}})
    assert (custom.vcpu_hour, custom.gb_hour, custom.public_ipv4_hour) == (0.05, 0.006, 0.005)
    with pytest.raises(InvalidDeploymentConfig):
        prices_for("eu-central-1", {"eu-central-1": {"vcpu": 1}})


def test_names_and_tags_follow_from_the_prefix():
    names = DeploymentNames("demo")
    assert (names.cluster, names.service, names.log_group, names.execution_role, names.security_group) == (
        "demo-cluster", "demo-api", "/ecs/demo-api", "demo-execution-role", "demo-http")
    assert names.tags == {"project": "eurosat-service", "eurosat-service:deployment": "demo"}


@pytest.mark.parametrize("prefix", ["", "A", "1abc", "ab_c", "a--b", "abc-", "x" * 33])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(InvalidDeploymentConfig):
        DeploymentNames(prefix)


def test_the_task_gets_port_80_settings_and_the_model_uri():
    definition = spec(model_uri="s3://models/eurosat", environment={"EUROSAT_MAX_QUEUE": "8"}).task_definition(
        "arn:exec", "arn:task")
    assert definition.port == 80 and definition.cpu == 256 and definition.memory == 512
    assert definition.environment == {"EUROSAT_AWS_REGION": "us-east-1", "EUROSAT_HOST": "0.0.0.0",
                                      "EUROSAT_MAX_QUEUE": "8", "EUROSAT_MODEL_URI": "s3://models/eurosat",
                                      "EUROSAT_PORT": "80"}
    assert definition.health_check[:2] == ("CMD", "python3") and "/readyz" in definition.health_check[-1]
    assert "curl" not in " ".join(definition.health_check)
    assert "EUROSAT_MODEL_URI" not in spec().container_environment()  # the image's own model


def test_ecr_and_s3_uris_are_parsed():
    image = EcrImage.parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/eurosat-service:abc123")
    assert image == EcrImage("123456789012", "eu-west-1", "team/eurosat-service")
    assert EcrImage.parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/repo@sha256:" + "a" * 64).repository == "repo"
    assert EcrImage.parse("localhost:5001/eurosat-service:1") is None
    assert S3Model.parse("/local/path") is None


@pytest.mark.parametrize("uri, model, keys", [
    ("s3://bucket/a/b/", S3Model("bucket", "a/b"), ("a/b/LATEST", "a/b/*/model.pt")),
    ("s3://bucket", S3Model("bucket", ""), ("LATEST", "*/model.pt")),
    ("s3://b/p/v1/model.pt", S3Model("b", "p", "v1", "model.pt"), ("p/v1/model.pt",)),
    ("s3://b/teams/x/p/v7/model.pt", S3Model("b", "teams/x/p", "v7"), ("teams/x/p/v7/model.pt",)),
    ("s3://b/v1/model.pt", S3Model("b", "", "v1"), ("v1/model.pt",)),
])
def test_an_s3_model_uri_names_the_keys_the_api_reads(uri, model, keys):
    assert S3Model.parse(uri) == model and model.readable_keys == keys


@pytest.mark.parametrize("uri", ["s3://", "s3:///models", "s3://b/model.pt"])
def test_a_malformed_s3_model_uri_is_refused_before_any_aws_call(uri):
    with pytest.raises(InvalidDeploymentConfig, match="model URI"):
        spec(model_uri=uri)


@pytest.mark.parametrize("key, hint", [("EUROSAT_MODEL_URI", "pass --model-uri instead"),
                                       ("EUROSAT_HOST", "0.0.0.0"), ("EUROSAT_PORT", "port 80")])
def test_env_may_not_override_what_the_deployment_sets(key, hint):
    with pytest.raises(InvalidDeploymentConfig, match=f"--env {key} is not allowed: .*{hint}"):
        spec(environment={key: "s3://models/eurosat" if key == "EUROSAT_MODEL_URI" else "8080"})


def test_service_state_tells_stable_from_failed():
    base = ServiceState("s", "ACTIVE", 1, 1, 0, "td:2", "COMPLETED")
    assert base.stable_on("td:2") and not base.failed_for("td:2")
    assert not ServiceState("s", "ACTIVE", 1, 1, 0, "td:2", "IN_PROGRESS", deployments=2).stable_on("td:2")
    assert ServiceState("s", "ACTIVE", 1, 1, 0, "td:1", "COMPLETED").failed_for("td:2")  # rolled back
    assert ServiceState("s", "ACTIVE", 1, 0, 0, "td:2", "FAILED").failed_for("td:2")
    # a forced new deployment of td:2 is under way; the failed one beside it no longer counts
    retry = ServiceState("s", "ACTIVE", 1, 0, 1, "td:2", "IN_PROGRESS", deployments=2)
    assert not retry.failed_for("td:2") and not retry.stable_on("td:2")
