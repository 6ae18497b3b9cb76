"""The deploy job's edges without AWS: boto3 errors become clear domain errors, and the requests
and policies the adapters send are what AWS needs (and no more)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from eurosat_service.adapters.aws_errors import NO_REGION, aws_errors, translates_aws_errors
from eurosat_service.adapters.ecs_fargate_deployer import fingerprint, task_definition_request
from eurosat_service.adapters.iam_task_role import execution_policy, model_read_policy, trust_policy
from eurosat_service.domain.deployment import DeploymentNames, DeploymentSpec
from eurosat_service.domain.errors import CloudAccessError, DeploymentError, EurosatError, InvalidDeploymentConfig
from eurosat_service.domain.model_uri import S3Model
from eurosat_service.entrypoints.deploy_args import parse_env, parse_since
from eurosat_service.entrypoints.last_image import read_last_image, record_last_image

ECR_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/eurosat-service:abc"


def client_error(code: str, message: str = "nope") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "SomeOperation")


@pytest.mark.parametrize("raised, kind, text", [
    (NoCredentialsError(), CloudAccessError, "no AWS credentials found"),
    (client_error("ExpiredToken"), CloudAccessError, "credentials expired"),
    (client_error("InvalidClientTokenId"), CloudAccessError, "rejected the credentials"),
    (client_error("AccessDeniedException", "not allowed: ecs:CreateCluster"), CloudAccessError,
     "access denied while creating: not allowed: ecs:CreateCluster"),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), CloudAccessError, "cannot reach AWS"),
    (client_error("InvalidParameterException", "bad subnet"), DeploymentError,
     "AWS refused creating: InvalidParameterException: bad subnet"),
])
def test_boto_errors_become_clear_domain_errors(raised, kind, text):
    with pytest.raises(kind, match=text):
        with aws_errors("creating"):
            raise raised


def test_every_public_adapter_method_is_translated():
    @translates_aws_errors
    class Adapter:
        def ensure_cluster(self):
            raise NoCredentialsError()

        def _helper(self):
            raise NoCredentialsError()

    with pytest.raises(CloudAccessError):
        Adapter().ensure_cluster()
    with pytest.raises(NoCredentialsError):  # private helpers run inside a public method's translation
        Adapter()._helper()


def definition(image: str = ECR_IMAGE, **kw):
    spec = DeploymentSpec(names=DeploymentNames("demo"), region="eu-west-1", image_uri=image, **kw)
    return spec.task_definition("arn:aws:iam::123456789012:role/eurosat-service/demo-execution-role", None)


def test_the_task_definition_request_is_fargate_ready():
    request = task_definition_request(definition())
    container = request["containerDefinitions"][0]
    assert request["requiresCompatibilities"] == ["FARGATE"] and request["networkMode"] == "awsvpc"
    assert (request["cpu"], request["memory"]) == ("256", "512") and container["memory"] == 512
    assert container["portMappings"] == [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}]
    assert container["logConfiguration"] == {"logDriver": "awslogs", "options": {
        "awslogs-group": "/ecs/demo-api", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "api"}}
    assert container["healthCheck"]["command"][1] == "python3" and container["healthCheck"]["startPeriod"] == 60
    assert {"name": "EUROSAT_PORT", "value": "80"} in container["environment"]
    assert container["systemControls"] == [{"namespace": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    assert "taskRoleArn" not in request  # no S3 model, no task role


def test_the_fingerprint_changes_with_the_image_only_when_it_should():
    assert fingerprint(task_definition_request(definition())) == fingerprint(task_definition_request(definition()))
    assert fingerprint(task_definition_request(definition())) != fingerprint(
        task_definition_request(definition(ECR_IMAGE.replace("abc", "def"))))
    assert fingerprint(task_definition_request(definition())) != fingerprint(
        task_definition_request(definition(cpu=512, memory=1024)))


def test_the_execution_role_may_pull_its_image_and_write_its_logs_only():
    policy = execution_policy("123456789012", "eu-west-1", "/ecs/demo-api", ECR_IMAGE)
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["WriteOwnLogs"]["Resource"] == "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/demo-api:*"
    assert by_sid["PullOwnImage"]["Resource"] == "arn:aws:ecr:eu-west-1:123456789012:repository/eurosat-service"
    assert by_sid["EcrLogin"]["Action"] == "ecr:GetAuthorizationToken"  # AWS only allows Resource "*" here
    assert all("*" not in s["Action"] for s in policy["Statement"])
    public = execution_policy("123456789012", "eu-west-1", "/ecs/demo-api", "ghcr.io/me/eurosat:1")
    assert [s["Sid"] for s in public["Statement"]] == ["WriteOwnLogs"]
    trust = trust_policy("123456789012")["Statement"][0]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_the_task_role_reads_only_the_model_objects_of_a_store():
    read, listing = model_read_policy(S3Model.parse("s3://models/eurosat"))["Statement"]
    assert read["Action"] == "s3:GetObject"
    assert read["Resource"] == ["arn:aws:s3:::models/eurosat/LATEST", "arn:aws:s3:::models/eurosat/*/model.pt"]
    assert listing["Action"] == "s3:ListBucket" and listing["Resource"] == "arn:aws:s3:::models"
    assert listing["Condition"] == {"StringEquals": {"s3:prefix": ["eurosat"]}}


def test_the_task_role_reads_exactly_the_one_model_object_a_version_uri_names():
    read, listing = model_read_policy(S3Model.parse("s3://b/p/v1/model.pt"))["Statement"]
    assert read["Resource"] == ["arn:aws:s3:::b/p/v1/model.pt"]  # not b/p/v1/model.pt/*, which matches nothing
    assert listing["Condition"] == {"StringEquals": {"s3:prefix": ["p"]}}
    assert "Condition" not in model_read_policy(S3Model.parse("s3://b/v1/model.pt"))["Statement"][1]


def test_since_and_env_flags_parse():
    assert parse_since("10m", now=1000.0) == 400_000
    assert parse_since("2h", now=10_000.0) == 2_800_000
    assert parse_since("2024-05-01T00:00:00Z") == 1_714_521_600_000
    with pytest.raises(InvalidDeploymentConfig):
        parse_since("yesterday")
    assert parse_env(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(InvalidDeploymentConfig):
        parse_env(["novalue"])


def test_the_last_pushed_image_round_trips(tmp_path):
    record = tmp_path / "last-image.json"
    assert read_last_image(record) is None
    record_last_image(ECR_IMAGE, record)
    assert read_last_image(record) == ECR_IMAGE
    record.write_text("not json")
    assert read_last_image(record) is None


def test_a_bad_flag_is_named_as_the_user_typed_it():
    """``--wait-timeout`` sets ``deploy_wait_timeout``: the error names the flag, not the setting."""
    from eurosat_service.entrypoints import deploy

    with pytest.raises(EurosatError) as refused:
        deploy.main(["up", "--wait-timeout", "0"])
    assert str(refused.value) == "invalid setting: --wait-timeout: Input should be greater than 0"


def test_a_log_limit_below_one_is_refused_as_a_usage_error(capsys):
    """``logs --limit -1`` reached ``deque(maxlen=-1)`` in the adapter: a ValueError traceback."""
    from eurosat_service.entrypoints import deploy

    for bad in ("0", "-1"):
        with pytest.raises(SystemExit) as refused:
            deploy.build_parser().parse_args(["logs", "--limit", bad])
        assert refused.value.code == 2
        assert f"--limit: must be at least 1, got {bad}" in capsys.readouterr().err
    assert deploy.build_parser().parse_args(["logs", "--limit", "5"]).limit == 5


@pytest.fixture
def aws_config(tmp_path, monkeypatch):
    """An ~/.aws/config of the test's own, and no region in the environment."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "EUROSAT_AWS_REGION", "AWS_PROFILE", "EUROSAT_AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    return config


def test_the_region_is_the_profiles_unless_given(aws_config):
    """As with the AWS CLI: a profile that says eu-west-1 deploys there, not to a default of ours."""
    from eurosat_service.entrypoints.container import build_container

    aws_config.write_text("[default]\nregion = eu-west-1\n[profile work]\nregion = ap-south-1\n")
    assert build_container().aws_region() == "eu-west-1"
    assert build_container(aws_profile="work").aws_region() == "ap-south-1"
    assert build_container(aws_profile="work", aws_region="us-east-2").aws_region() == "us-east-2"


def test_no_region_anywhere_is_one_clear_error(aws_config, capsys):
    from eurosat_service.entrypoints import cli, deploy

    aws_config.write_text("[default]\n")
    for argv in (["status"], ["down"], ["up", "--image-uri", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1"]):
        with pytest.raises(SystemExit) as exited:
            cli.run(lambda: deploy.main(argv))  # noqa: B023 (called at once)
        assert exited.value.code == 2
        assert capsys.readouterr().err == f"error: {NO_REGION}\n"


def test_an_unknown_profile_is_one_clear_error(aws_config, capsys):
    from eurosat_service.entrypoints import cli, deploy

    aws_config.write_text("[default]\nregion = eu-west-1\n")
    with pytest.raises(SystemExit) as exited:
        cli.run(lambda: deploy.main(["status", "--profile", "nope"]))
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("error: The config profile (nope) could not be found")
