"""Deploy settings QA found unchecked: each must be refused as one ``error:`` line and exit code 2,
naming the setting as the user gave it, before any AWS call (never a botocore or pydantic traceback)."""

from __future__ import annotations

import pytest
from botocore.utils import is_valid_uri

from eurosat_service.adapters.artifact_uri import resolve_model_file
from eurosat_service.domain.deployment import DeploymentNames, DeploymentSpec, check_region, prices_for
from eurosat_service.domain.errors import ArtifactNotFound, EurosatError, InvalidDeploymentConfig
from eurosat_service.domain.model_uri import check_task_model_uri
from eurosat_service.entrypoints import cli, deploy
from eurosat_service.entrypoints.settings import Settings, load_settings

ENV_NAMES = ("EUROSAT_AWS_REGION", "EUROSAT_AWS_ENDPOINT_URL", "EUROSAT_FARGATE_PRICES", "EUROSAT_DEPLOY_MODEL_URI",
             "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "EUROSAT_AWS_PROFILE")


@pytest.fixture(autouse=True)
def clean_environment(tmp_path, monkeypatch):
    """No region, endpoint or profile from the machine; dummy credentials in case a check is missing."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def refused(argv: list[str], capsys) -> str:
    """Runs the deploy job as ``python -m`` does; returns its one stderr line after exit code 2."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.run(lambda: deploy.main(argv))
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err.removeprefix("error: ").rstrip("\n")


def spec(**kw) -> DeploymentSpec:
    return DeploymentSpec(names=DeploymentNames("demo"), region=kw.pop("region", "eu-west-1"), image_uri="img:1",
                          **kw)


# -- 1. --endpoint-url ----------------------------------------------------------------------------
BAD_ENDPOINTS = ["notaurl", "http://", "http://127.0.0.1:99999", "http://[::1", "ftp://example.com",
                 "localhost:4566", "http://127.0.0.1:0", "http://moto_server:5000", "http://host:port",
                 "http://exa mple.com"]


@pytest.mark.parametrize("url", BAD_ENDPOINTS)
def test_a_malformed_endpoint_url_is_refused_by_flag_and_by_variable(url, monkeypatch):
    with pytest.raises(EurosatError, match=r"^invalid setting: --endpoint-url: .*http:// or https://"):
        load_settings({"aws_endpoint_url": url}, deploy.flag_names())
    monkeypatch.setenv("EUROSAT_AWS_ENDPOINT_URL", url)
    with pytest.raises(EurosatError, match=r"^invalid setting: EUROSAT_AWS_ENDPOINT_URL: "):
        load_settings()


@pytest.mark.parametrize("url", ["http://127.0.0.1:5000", "https://ecs.eu-west-1.amazonaws.com",
                                 "HTTP://localhost:4566/", "http://[::1]:4566", "https://vpce-1.example.com.", ""])
def test_a_well_formed_endpoint_url_is_kept_as_given(url):
    assert load_settings({"aws_endpoint_url": url}).aws_endpoint_url == url
    assert not url or is_valid_uri(url)  # and botocore takes it: the rule is no stricter than the client's


def test_a_malformed_endpoint_url_ends_in_one_error_line_not_a_botocore_traceback(capsys):
    """botocore raised a bare ``ValueError: Invalid endpoint`` when `status` made its first client."""
    for url in ("notaurl", "http://127.0.0.1:99999"):
        message = refused(["status", "--no-probe", "--region", "eu-west-1", "--endpoint-url", url], capsys)
        assert message.startswith(f"invalid setting: --endpoint-url: {url!r}")


# -- 2. EUROSAT_FARGATE_PRICES --------------------------------------------------------------------
@pytest.mark.parametrize("value, problem", [
    ("nope", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1]", "Input should be a valid dictionary"),
    ('{"eu-west-1": 1}', 'at ["eu-west-1"]: Input should be a valid dictionary'),
    ('{"eu-west-1": {"vcpu_hour": "x", "gb_hour": 1}}',
     'at ["eu-west-1"]["vcpu_hour"]: Input should be a valid number'),
    ('{"eu-west-1": {"vcpu_hour": -0.01, "gb_hour": 0.004}}', "'eu-west-1': vcpu_hour must be 0 or more, got -0.01"),
    ('{"eu-west-1": {"vcpu_hour": 0.04, "gb_hour": NaN}}', "'eu-west-1': gb_hour must be 0 or more, got nan"),
    ('{"eu-west-1": {"vcpu_hour": 0.04, "gb_hour": 0.004, "public_ipv4_hour": -1}}', "public_ipv4_hour must be 0"),
    ('{"eu-west-1": {"vcpu": 0.04}}', "'eu-west-1' needs vcpu_hour and gb_hour"),
    ('{"eu west 1": {"vcpu_hour": 0.04, "gb_hour": 0.004}}', "AWS region 'eu west 1' is not an AWS region name"),
])
def test_bad_fargate_prices_are_one_error_naming_the_variable(value, problem, monkeypatch):
    monkeypatch.setenv("EUROSAT_FARGATE_PRICES", value)
    with pytest.raises(EurosatError) as error:
        load_settings()
    message = str(error.value)
    assert message.startswith("invalid setting: EUROSAT_FARGATE_PRICES: ") and problem in message, message
    assert "EUROSAT_FARGATE_PRICES_" not in message  # no made-up name from the key path


def test_bad_fargate_prices_stop_every_command_with_one_line_even_down(monkeypatch, capsys):
    """pydantic-settings raised its ``SettingsError`` traceback while reading the environment."""
    monkeypatch.setenv("EUROSAT_FARGATE_PRICES", "{not json")
    for argv in (["down", "--region", "eu-west-1"], ["plan", "--region", "eu-west-1"]):
        assert refused(argv, capsys).startswith("invalid setting: EUROSAT_FARGATE_PRICES: not valid JSON")


def test_valid_fargate_prices_still_price_the_plan(monkeypatch, capsys):
    monkeypatch.setenv("EUROSAT_FARGATE_PRICES", '{"eu-west-1": {"vcpu_hour": 0.05, "gb_hour": 0.005}}')
    assert load_settings().fargate_prices == {"eu-west-1": {"vcpu_hour": 0.05, "gb_hour": 0.005}}
    assert deploy.main(["plan", "--region", "eu-west-1"]) == 0
    assert "eu-west-1 price from EUROSAT_FARGATE_PRICES" in capsys.readouterr().out


def test_a_negative_price_never_makes_a_negative_estimate():
    with pytest.raises(InvalidDeploymentConfig, match="EUROSAT_FARGATE_PRICES: 'eu-west-1': gb_hour must be 0"):
        prices_for("eu-west-1", {"eu-west-1": {"vcpu_hour": 0.04, "gb_hour": -1}})
    assert prices_for("eu-west-1", {"eu-west-1": {"vcpu_hour": 0, "gb_hour": 0}}).vcpu_hour == 0


# -- 3. --env and reserved settings ---------------------------------------------------------------
@pytest.mark.parametrize("key", ["eurosat_port", "Eurosat_Host", "eurosat_MODEL_URI"])
def test_env_may_not_override_a_reserved_setting_in_any_case(key, monkeypatch):
    """The API's settings read EUROSAT_* names in any case: ``eurosat_port=81`` moved the API off port 80."""
    monkeypatch.setenv("eurosat_port", "81")
    assert Settings().port == 81  # why the check must ignore case
    with pytest.raises(InvalidDeploymentConfig, match=f"^--env {key} is not allowed: .*{key.upper()}"):
        spec(environment={key: "81"})


def test_env_may_not_set_one_setting_twice_in_different_cases():
    with pytest.raises(InvalidDeploymentConfig, match="--env EUROSAT_VIEWS and eurosat_views set the same setting"):
        spec(environment={"EUROSAT_VIEWS": "2", "eurosat_views": "4"})
    assert spec(environment={"Foo": "1", "FOO": "2"}).environment == {"Foo": "1", "FOO": "2"}  # not a setting


def test_an_env_region_in_any_case_is_not_doubled_by_the_deployments():
    deployment = spec(model_uri="s3://bucket/models/x", environment={"eurosat_aws_region": "us-east-1"})
    env = deployment.container_environment()
    assert [k for k in env if k.upper() == "EUROSAT_AWS_REGION"] == ["eurosat_aws_region"]


def test_a_reserved_env_in_lowercase_is_refused_by_plan(capsys):
    message = refused(["plan", "--region", "eu-west-1", "--env", "eurosat_port=81"], capsys)
    assert message.startswith("--env eurosat_port is not allowed")


# -- 4. --model-uri -------------------------------------------------------------------------------
UNREADABLE_MODELS = ["http://example.com/model.pt", "gs://b/m", "S3://b/m", "s3:/b/m", "file:/opt/m", "file://s3://b/m",
                     "/opt/models/http://x"]


@pytest.mark.parametrize("uri", UNREADABLE_MODELS)
def test_a_model_uri_the_api_cannot_read_is_refused_before_any_aws_call(uri, capsys):
    with pytest.raises(InvalidDeploymentConfig, match=f"model URI {uri!r}"):
        spec(model_uri=uri)
    message = refused(["plan", "--region", "eu-west-1", "--model-uri", uri], capsys)
    assert message.startswith(f"invalid setting: --model-uri: model URI {uri!r}")
    assert "s3://bucket/prefix" in message and "a path inside the image" in message


@pytest.mark.parametrize("uri", UNREADABLE_MODELS)
def test_what_the_deployment_refuses_the_serving_side_refuses_too(uri, tmp_path):
    """The check mirrors ``resolve_model_file``; it only runs sooner."""
    with pytest.raises(ArtifactNotFound):
        resolve_model_file(uri, tmp_path, s3_client=lambda: pytest.fail("no S3 call expected"))


def test_a_model_uri_variable_is_named_as_given(monkeypatch):
    monkeypatch.setenv("EUROSAT_DEPLOY_MODEL_URI", "gs://b/m")
    with pytest.raises(EurosatError, match="^invalid setting: EUROSAT_DEPLOY_MODEL_URI: model URI 'gs://b/m'"):
        load_settings()


@pytest.mark.parametrize("uri", ["s3://bucket/models/eurosat-resnet18", "s3://bucket/p/v1/model.pt",
                                 "/opt/eurosat-service/models/eurosat-resnet18", "file:///opt/models/x",
                                 "models/eurosat-resnet18"])
def test_s3_models_and_paths_inside_the_image_are_accepted(uri):
    check_task_model_uri(uri)
    assert spec(model_uri=uri).container_environment()["EUROSAT_MODEL_URI"] == uri


# -- 5. region ------------------------------------------------------------------------------------
BAD_REGIONS = ["EU WEST 1", "eu-west-1/x", "Eu-West-1", "eu-west-1a", "eu-west", "euwest1", "-eu-west-1", "local"]


@pytest.mark.parametrize("region", BAD_REGIONS)
def test_a_malformed_region_is_refused(region, monkeypatch):
    with pytest.raises(InvalidDeploymentConfig, match=f"AWS region {region!r} is not an AWS region name"):
        spec(region=region)
    with pytest.raises(EurosatError, match=f"^invalid setting: --region: AWS region {region!r} is not"):
        load_settings({"aws_region": region}, deploy.flag_names())
    monkeypatch.setenv("EUROSAT_AWS_REGION", region)
    with pytest.raises(EurosatError, match="^invalid setting: EUROSAT_AWS_REGION: "):
        load_settings()


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1", "us-gov-west-1", "cn-north-1", "ap-southeast-5",
                                    "us-isob-east-1", "eusc-de-east-1"])
def test_real_region_names_pass(region):
    check_region(region)
    assert spec(region=region).region == region
    assert load_settings({"aws_region": region}).aws_region == region


def test_plan_refuses_a_malformed_region_from_any_source(monkeypatch, capsys):
    message = refused(["plan", "--region", "EU WEST 1"], capsys)
    assert message.startswith("invalid setting: --region: AWS region 'EU WEST 1' is not an AWS region name")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1/x")  # boto3's own variable, read past our settings
    assert refused(["plan"], capsys).startswith("AWS region 'eu-west-1/x' is not an AWS region name")
