"""Each way a deployment can go wrong gives one clear line and a non-zero exit, never a
traceback, and `down` cleans up after it. Real moto over HTTP; failures that moto cannot
produce (a crashing container) are injected by overriding one adapter in the container."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

from dependency_injector import providers

from eurosat_service.domain.deployment import ServiceState, TaskState
from eurosat_service.domain.errors import DeploymentError
from eurosat_service.entrypoints.container import build_container
from tests.integration.deploy_helpers import IMAGE, Moto, Patched, run_deploy


def test_a_bad_cpu_memory_pair_is_refused_before_any_resource_exists(moto, prefix):
    result = subprocess.run(
        [sys.executable, "-m", "eurosat_service.entrypoints.deploy", "up", "--name-prefix", prefix,
         "--image-uri", IMAGE.format(tag="v1"), "--cpu", "256", "--memory", "4096"],
        capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: Fargate refuses 256 CPU units with 4096 MiB; with 256 CPU units memory must be one of: "
        "512, 1024, 2048")
    assert "Traceback" not in result.stderr
    assert moto.made_by(prefix) == []


def test_missing_credentials_or_profile_are_clear_errors(moto, prefix, capsys, monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for command in (["up", "--image-uri", IMAGE.format(tag="v1")], ["status"], ["down"]):
        code, out, err = run_deploy(capsys, *command, "--name-prefix", prefix)
        assert code == 2 and "error: no AWS credentials found: run `aws configure`" in err, (command, err)
        assert "Traceback" not in err
    code, _, err = run_deploy(capsys, "status", "--profile", "no-such-profile")
    assert code == 2 and "no-such-profile" in err and "Traceback" not in err
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert moto.made_by(prefix) == []


def test_an_unknown_profile_with_every_down_option_is_one_error_line(moto, prefix, capsys):
    code, out, err = run_deploy(capsys, "down", "--name-prefix", prefix, "--delete-repository",
                                "--profile", "no-such-profile")
    assert code == 2 and "deleted" not in out
    assert err.strip().splitlines() == [("error: The config profile (no-such-profile) could not be found: "
                                         "check --profile / EUROSAT_AWS_PROFILE and ~/.aws/config")]


def test_a_region_without_default_vpc_is_refused_before_anything_is_made(moto, prefix, capsys):
    region = Moto(moto.endpoint, "eu-west-3")  # its own region, so other tests keep their default VPC
    ec2 = region.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    for gateway in ec2.describe_internet_gateways()["InternetGateways"]:
        ec2.detach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], VpcId=vpc)
        ec2.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"])
    ec2.delete_vpc(VpcId=vpc)
    code, _, err = run_deploy(capsys, "up", "--region", "eu-west-3", "--name-prefix", prefix,
                              "--image-uri", IMAGE.format(tag="v1"))
    assert code == 2 and "error: this region has no default VPC: create one" in err and "Traceback" not in err
    assert region.made_by(prefix) == []


def test_down_cleans_up_after_an_up_that_failed_half_way(moto, prefix, capsys):
    shell = build_container()

    def cluster_step_fails(name, tags):
        raise DeploymentError("injected failure: creating the cluster")

    shell.deployer.override(providers.Object(Patched(shell.deployer(), ensure_cluster=cluster_step_fails)))
    code, out, err = run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", IMAGE.format(tag="v1"),
                                container=shell)
    assert code == 2 and "error: injected failure" in err and "Traceback" not in err
    assert err.rstrip().endswith(f"`python -m eurosat_service.entrypoints.deploy down --name-prefix {prefix}` "
                                 "removes what `up` made, if anything")
    assert f"security group {prefix}-http" in out  # the steps before the failure did run
    made = moto.made_by(prefix)
    assert sorted(m.split()[0] for m in made) == ["log", "role", "security"]

    code, out, err = run_deploy(capsys, "down", "--name-prefix", prefix)  # a fresh shell
    assert code == 0, out + err
    assert out.count("deleted ") == 3 and "nothing is left" in out
    assert moto.made_by(prefix) == []


def test_a_service_that_never_gets_healthy_shows_why_and_can_be_removed(moto, prefix, capsys):
    shell = build_container()
    real = shell.deployer()
    failing = ServiceState("api", "ACTIVE", 1, 0, 0, "", "FAILED", "tasks failed to start",
                           events=("(service x-api) deployment ecs-svc/1 deployment failed: tasks failed to start.",))

    def service(cluster, name):
        state = real.service(cluster, name)
        if state is None:
            return None
        return ServiceState(**{**failing.__dict__, "name": name, "task_definition": state.task_definition})

    def tasks(cluster, name, stopped=False):
        if not stopped:
            return []
        return [TaskState(f"arn:aws:ecs:us-east-1:123456789012:task/{cluster}/0123abcd", "STOPPED",
                          stopped_reason="Task failed container health checks",
                          container_reasons=("api: exit code 1",))]

    shell.deployer.override(providers.Object(Patched(real, service=service, tasks=tasks)))
    code, out, err = run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", IMAGE.format(tag="bad"),
                                container=shell)
    assert code == 2 and "Traceback" not in err
    for expected in (f"error: service {prefix}-api never became healthy", "rollout FAILED (tasks failed to start)",
                     "deployment failed: tasks failed to start", "task 0123abcd: Task failed container health "
                     "checks (api: exit code 1)", "`down` removes everything"):
        assert expected in err
    assert run_deploy(capsys, "down", "--name-prefix", prefix)[0] == 0
    assert moto.made_by(prefix) == []


def test_a_service_that_never_settles_times_out(moto, prefix, capsys, monkeypatch):
    monkeypatch.setenv("EUROSAT_DEPLOY_WAIT_TIMEOUT", "0.3")
    shell = build_container()
    real = shell.deployer()

    def service(cluster, name):
        state = real.service(cluster, name)
        return state and ServiceState(name, "ACTIVE", 1, 0, 1, state.task_definition, "IN_PROGRESS")

    shell.deployer.override(providers.Object(Patched(real, service=service)))
    code, out, err = run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", IMAGE.format(tag="v1"),
                                container=shell)
    assert code == 2 and "was not stable after 0 s: 0/1 running, 1 pending" in err and "Traceback" not in err
    assert "AWS reported no service events and no stopped tasks yet" in err
    assert run_deploy(capsys, "down", "--name-prefix", prefix)[0] == 0
    assert moto.made_by(prefix) == []


def test_up_again_restarts_a_first_rollout_that_failed(moto, prefix, capsys):
    """Nothing to roll back to: the service stays on its failed rollout. Once the cause is fixed
    (here: the tasks start), `up` with the same settings must start a new rollout, not fail at
    once on the old one's state."""
    shell = build_container()
    real = shell.deployer()
    forced: list[str] = []

    def service(cluster, name):
        state = real.service(cluster, name)
        if state is None or forced:
            return state
        return replace(state, running=0, rollout_state="FAILED", rollout_reason="tasks failed to start",
                       events=("(service x-api) deployment failed: tasks failed to start.",))

    def force_new_deployment(cluster, name):
        forced.append(name)
        real.force_new_deployment(cluster, name)

    shell.deployer.override(providers.Object(Patched(real, service=service, force_new_deployment=force_new_deployment)))
    image = IMAGE.format(tag="v1")
    code, _, err = run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", image, container=shell)
    assert code == 2 and f"service {prefix}-api never became healthy" in err and forced == []
    ecs = moto.client("ecs")

    def deployment_id() -> str:
        return ecs.describe_services(cluster=f"{prefix}-cluster", services=[f"{prefix}-api"])[
            "services"][0]["deployments"][0]["id"]

    before = deployment_id()
    code, out, err = run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", image, container=shell)
    assert code == 0, err
    assert f"service {prefix}-api: restarted" in out and forced == [f"{prefix}-api"]
    assert deployment_id() != before  # moto saw the forced new deployment
    assert run_deploy(capsys, "down", "--name-prefix", prefix)[0] == 0
    assert moto.made_by(prefix) == []


def test_smoke_with_nothing_deployed_says_so_and_how_to_deploy(moto, prefix, capsys):
    code, _, err = run_deploy(capsys, "smoke", "--name-prefix", prefix)
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (f"error: nothing is deployed as '{prefix}' in us-east-1 (`python -m "
                           f"eurosat_service.entrypoints.deploy up --name-prefix {prefix}` deploys it); "
                           "pass --url to test another server")
