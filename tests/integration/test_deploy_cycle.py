"""`up` -> `status` -> `logs` -> `down` through the CLI against a real moto server over HTTP,
then boto3 checks that nothing the job made is left. Also: idempotent `up`, `down` twice."""

from __future__ import annotations

import json
import shlex
import time

from eurosat_service.adapters.ecr_registry import EcrRegistry
from eurosat_service.domain.deployment import DeploymentNames
from eurosat_service.entrypoints.container import build_container
from tests.integration.deploy_helpers import IMAGE, run_deploy

# One container per test plays one shell (its boto3 clients are built once, which matters on a
# busy machine); `down` always runs in a fresh one, as after closing the terminal.


def test_full_cycle_up_status_logs_down(moto, prefix, capsys):
    shell = build_container()
    code, out, err = run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", IMAGE.format(tag="v1"),
                                "--env", "EUROSAT_MAX_QUEUE=16", container=shell)
    assert code == 0, err
    assert "$0.0173 per hour" in out and "not in the AWS free tier" in out
    assert f"service {prefix}-api is stable: 1/1 running {prefix}-api:1 (service created)" in out
    assert "no public IP attached yet" in out  # moto never attaches one
    assert "Traceback" not in err
    # the `down` it prints names this deployment: `down` alone would look for the default prefix
    down = next(line for line in out.splitlines() if line.startswith("when done: "))
    down = down.removeprefix("when done: ").split("   (")[0]
    assert down == f"python -m eurosat_service.entrypoints.deploy down --name-prefix {prefix}"
    assert len(moto.made_by(prefix)) == 6

    # what `up` made, as AWS sees it
    ecs, ec2, iam, logs = (moto.client(s) for s in ("ecs", "ec2", "iam", "logs"))
    service = ecs.describe_services(cluster=f"{prefix}-cluster", services=[f"{prefix}-api"],
                                    include=["TAGS"])["services"][0]
    assert {"key": "eurosat-service:deployment", "value": prefix} in service["tags"]
    assert service["launchType"] == "FARGATE" and service["desiredCount"] == 1
    network = service["networkConfiguration"]["awsvpcConfiguration"]
    assert network["assignPublicIp"] == "ENABLED" and len(network["subnets"]) == 6
    described = ecs.describe_task_definition(taskDefinition=f"{prefix}-api", include=["TAGS"])
    definition, container = described["taskDefinition"], described["taskDefinition"]["containerDefinitions"][0]
    assert (definition["cpu"], definition["memory"], definition["networkMode"]) == ("256", "512", "awsvpc")
    assert definition["requiresCompatibilities"] == ["FARGATE"] and container["memory"] == 512
    assert container["portMappings"][0]["containerPort"] == 80
    assert container["logConfiguration"]["options"]["awslogs-group"] == f"/ecs/{prefix}-api"
    assert container["healthCheck"]["command"][:2] == ["CMD", "python3"]
    assert {"name": "EUROSAT_MAX_QUEUE", "value": "16"} in container["environment"]
    group = ec2.describe_security_groups(GroupIds=network["securityGroups"])["SecurityGroups"][0]
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"]) for p in group["IpPermissions"]] == [("tcp", 80, 80)]
    assert [(p["IpProtocol"], p.get("FromPort")) for p in group["IpPermissionsEgress"]] == [("tcp", 443)]
    role = iam.get_role(RoleName=f"{prefix}-execution-role")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    policy = iam.get_role_policy(RoleName=f"{prefix}-execution-role", PolicyName="least-privilege")["PolicyDocument"]
    resources = [s["Resource"] for s in policy["Statement"]]
    assert f"arn:aws:logs:us-east-1:123456789012:log-group:/ecs/{prefix}-api:*" in resources
    assert "arn:aws:ecr:us-east-1:123456789012:repository/eurosat-service" in resources
    assert iam.list_attached_role_policies(RoleName=f"{prefix}-execution-role")["AttachedPolicies"] == []
    assert logs.describe_log_groups(logGroupNamePrefix=f"/ecs/{prefix}-api")["logGroups"][0]["retentionInDays"] == 7

    code, out, err = run_deploy(capsys, "status", "--name-prefix", prefix, container=shell)
    assert code == 0, err
    assert f"service   {prefix}-api: ACTIVE, 1/1 running" in out
    assert IMAGE.format(tag="v1") in out and "endpoint  no public IP yet" in out
    code, out, _ = run_deploy(capsys, "status", "--name-prefix", prefix, "--json", container=shell)
    assert json.loads(out)["service"]["task_definition"].endswith(f"{prefix}-api:1")

    now = int(time.time() * 1000)
    stream = f"api/api/{'0' * 32}"
    logs.create_log_stream(logGroupName=f"/ecs/{prefix}-api", logStreamName=stream)
    logs.put_log_events(logGroupName=f"/ecs/{prefix}-api", logStreamName=stream, logEvents=[
        {"timestamp": now - 2000, "message": '{"event": "ready", "model_version": "v1"}'},
        {"timestamp": now - 1000, "message": '{"endpoint": "/predict", "status": 200}'},
    ])
    code, out, err = run_deploy(capsys, "logs", "--name-prefix", prefix, "--since", "5m", container=shell)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2 and stream in lines[0] and '"event": "ready"' in lines[0] and "/predict" in lines[1]

    code, out, err = run_deploy(capsys, *shlex.split(down)[3:])  # as printed, after `python -m <module>`
    assert code == 0, err
    assert f"nothing is left of deployment '{prefix}'" in out
    assert moto.made_by(prefix) == []
    assert ecs.list_task_definitions(familyPrefix=f"{prefix}-api", status="INACTIVE")["taskDefinitionArns"] == []


def test_up_is_idempotent_and_a_new_image_rolls_out(moto, prefix, capsys):
    image, shell = IMAGE.format(tag="v1"), build_container()
    assert run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", image, container=shell)[0] == 0
    before = moto.made_by(prefix)
    code, out, _ = run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", image, container=shell)
    assert code == 0 and "created" not in out.replace("(service created)", "")
    assert f"service {prefix}-api: unchanged" in out and moto.made_by(prefix) == before

    code, out, _ = run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", IMAGE.format(tag="v2"),
                              container=shell)
    assert code == 0 and f"task definition {prefix}-api:2: created" in out and f"service {prefix}-api: updated" in out
    ecs = moto.client("ecs")
    service = ecs.describe_services(cluster=f"{prefix}-cluster", services=[f"{prefix}-api"])["services"][0]
    assert service["taskDefinition"].endswith(f"{prefix}-api:2")

    assert run_deploy(capsys, "down", "--name-prefix", prefix)[0] == 0
    code, out, _ = run_deploy(capsys, "down", "--name-prefix", prefix, container=shell)  # twice is fine
    assert code == 0 and "deleted" not in out and "nothing is left" in out
    assert moto.made_by(prefix) == []


def test_up_uses_the_image_the_image_command_pushed_last(moto, prefix, capsys, tmp_path):
    record, shell = tmp_path / "home" / ".cache" / "eurosat-service" / "last-image.json", build_container()
    code, _, err = run_deploy(capsys, "up", "--name-prefix", prefix, container=shell)
    assert code == 2 and "no image to deploy" in err and moto.made_by(prefix) == []
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"image_uri": IMAGE.format(tag="pushed")}))
    assert run_deploy(capsys, "up", "--name-prefix", prefix, container=shell)[0] == 0
    container = moto.client("ecs").describe_task_definition(taskDefinition=f"{prefix}-api")["taskDefinition"]
    assert container["containerDefinitions"][0]["image"] == IMAGE.format(tag="pushed")
    assert run_deploy(capsys, "down", "--name-prefix", prefix, container=shell)[0] == 0


def test_down_deletes_only_the_repositories_tagged_as_the_deployments_and_never_s3(moto, prefix, capsys):
    ecr, s3, iam = moto.client("ecr"), moto.client("s3"), moto.client("iam")
    ours, foreign, bucket = f"{prefix}-images", f"{prefix}-foreign", f"{prefix}-models"
    EcrRegistry(ecr).ensure_repository(ours, DeploymentNames(prefix).tags, 5)  # as `image --prefix` makes it
    ecr.create_repository(repositoryName=foreign)  # someone else's, which `image` may still push to
    s3.create_bucket(Bucket=bucket)
    for key in ("eurosat/LATEST", "eurosat/v1/model.pt", "eurosat/v1/report.json", "other-team/data.csv"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    image = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{foreign}:v1"
    code, _, err = run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", image,
                              "--model-uri", f"s3://{bucket}/eurosat/v1/model.pt")
    assert code == 0, err
    read = iam.get_role_policy(RoleName=f"{prefix}-task-role", PolicyName="least-privilege")["PolicyDocument"]
    assert read["Statement"][0] == {"Sid": "ReadModel", "Effect": "Allow", "Action": "s3:GetObject",
                                    "Resource": [f"arn:aws:s3:::{bucket}/eurosat/v1/model.pt"]}

    code, out, err = run_deploy(capsys, "down", "--name-prefix", prefix, "--delete-repository")
    assert code == 0, out + err
    assert f"deleted ECR repository {ours}" in out
    assert f"kept: ECR repository {foreign}: not created by this tool for deployment '{prefix}'" in out
    assert moto.made_by(prefix) == []
    names = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert ours not in names and foreign in names
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["eurosat/LATEST", "eurosat/v1/model.pt", "eurosat/v1/report.json", "other-team/data.csv"]

    code, out, _ = run_deploy(capsys, "down", "--name-prefix", prefix, "--delete-repository", foreign)
    assert code == 0 and f"kept: ECR repository {foreign}" in out and "deleted" not in out
    assert foreign in [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    ecr.delete_repository(repositoryName=foreign)
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    s3.delete_bucket(Bucket=bucket)


def test_down_leaves_a_same_named_repository_of_another_region_alone(moto, prefix, capsys):
    ecr, repository = moto.client("ecr"), f"{prefix}-images"
    ecr.create_repository(repositoryName=repository)  # this region's, untagged: not the deployed one
    image = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{repository}:v1"
    assert run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", image)[0] == 0
    code, out, err = run_deploy(capsys, "down", "--name-prefix", prefix, "--delete-repository")
    assert code == 0, out + err
    assert f"kept: ECR repository {repository}: in account 123456789012, region eu-west-1, not this one" in out
    assert repository in [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert moto.made_by(prefix) == []
    ecr.delete_repository(repositoryName=repository)


def test_the_same_prefix_in_another_region_never_touches_this_regions_iam_roles(moto, prefix, capsys):
    """IAM roles are global: `up` or `down` under this prefix in another region (or by a typo in
    --region) must neither rewrite nor delete the roles the deployment here runs with."""
    image = IMAGE.format(tag="v1")
    assert run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", image)[0] == 0
    iam, role = moto.client("iam"), f"{prefix}-execution-role"

    def policy() -> dict:
        return iam.get_role_policy(RoleName=role, PolicyName="least-privilege")["PolicyDocument"]

    before = policy()
    code, _, err = run_deploy(capsys, "up", "--region", "eu-north-1", "--name-prefix", prefix, "--image-uri", image)
    assert code == 2 and f"error: IAM role {role} belongs to deployment {prefix!r} in region us-east-1" in err
    assert "Traceback" not in err and policy() == before
    code, out, err = run_deploy(capsys, "down", "--region", "eu-north-1", "--name-prefix", prefix)
    assert code == 0, out + err
    assert f"deleted log group /ecs/{prefix}-api" in out  # what the refused `up` made there
    assert f"IAM role {role}" not in out and len(moto.made_by(prefix)) == 6
    assert run_deploy(capsys, "down", "--name-prefix", prefix)[0] == 0
    assert moto.made_by(prefix) == []


def test_a_role_made_before_roles_recorded_their_region_is_refused_with_the_fix(moto, prefix, capsys):
    image = IMAGE.format(tag="v1")
    assert run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", image)[0] == 0
    iam, role = moto.client("iam"), f"{prefix}-execution-role"
    iam.untag_role(RoleName=role, TagKeys=["eurosat-service:region"])  # as an earlier version made it

    code, _, err = run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", image)
    fix = f"aws iam tag-role --role-name {role} --tags Key=eurosat-service:region,Value=us-east-1"
    assert code == 2 and "records no region (made by an earlier version)" in err and fix in err, err
    iam.tag_role(RoleName=role, Tags=[{"Key": "eurosat-service:region", "Value": "us-east-1"}])  # the fix
    assert run_deploy(capsys, "up", "--name-prefix", prefix, "--image-uri", image)[0] == 0
    assert run_deploy(capsys, "down", "--name-prefix", prefix)[0] == 0
    assert moto.made_by(prefix) == []


def test_plan_and_dry_run_show_resources_and_cost_and_make_nothing(moto, prefix, capsys):
    shell = build_container()
    code, out, _ = run_deploy(capsys, "plan", "--name-prefix", prefix, "--cpu", "512", "--memory", "1024",
                              container=shell)
    assert code == 0
    assert f"+ ECS service {prefix}-api (1 task(s) in public subnets with a public IP" in out
    assert "$0.02469/h compute + $0.0050/h public IPv4" in out and "$0.0297 per hour, $21.67 per month" in out
    code, dry, _ = run_deploy(capsys, "up", "--dry-run", "--name-prefix", prefix, "--image-uri",
                              IMAGE.format(tag="v1"), container=shell)
    assert code == 0 and f"+ IAM role {prefix}-execution-role" in dry and "512 MiB" in dry
    assert moto.made_by(prefix) == []


def test_the_image_command_is_part_of_the_deploy_job(monkeypatch):
    from eurosat_service.entrypoints import deploy, deploy_image

    seen = {}
    monkeypatch.setattr(deploy_image, "run_image", lambda args: seen.update(vars(args)) or 0)
    assert deploy.main(["--region", "eu-west-1", "--name-prefix", "demo", "image", "--keep", "3"]) == 0
    assert (seen["region"], seen["name_prefix"], seen["keep"]) == ("eu-west-1", "demo", 3)
