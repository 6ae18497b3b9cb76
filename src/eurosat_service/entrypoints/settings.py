"""All configuration, read from ``EUROSAT_*`` environment variables (flags override them)."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from eurosat_service.domain.deployment import FargatePrices, check_region
from eurosat_service.domain.errors import EurosatError, InvalidDeploymentConfig
from eurosat_service.domain.model_uri import check_task_model_uri
from eurosat_service.domain.views import view_transforms

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SHIPPED_MODEL = PROJECT_ROOT / "models" / "eurosat-resnet18"
ENDPOINT_FORM = "http:// or https://, a host and an optional port, e.g. http://127.0.0.1:5000"
_HOST_NAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$", re.IGNORECASE)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EUROSAT_", extra="ignore")

    # Model factory
    data_dir: Path = Path("data")
    artifact_uri: str = str(SHIPPED_MODEL)
    checkpoint_dir: Path = Path("runs/checkpoints")
    work_dir: Path = Path("runs/output")

    # Inference engine
    model_uri: str = str(SHIPPED_MODEL)
    model_cache_dir: Path = Path.home() / ".cache" / "eurosat-service"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    inference_workers: int = Field(default=0, ge=0)  # batches run at once, each on its own thread; 0: one per CPU
    inference_threads: int = Field(default=0, ge=0)  # torch threads per worker; 0: CPUs / workers
    max_batch_size: int = Field(default=8, ge=1)  # images per micro-batch (per worker)
    views: int = 1  # test-time augmentation: flips/rotations averaged per image (1, 2, 4, 8; x CPU)
    max_wait_ms: float = Field(default=5.0, ge=0, le=1000)  # a micro-batch closes after this pause in arrivals
    max_queue: int = Field(default=64, ge=1)  # images waiting; beyond it requests get 503
    decode_in: Literal["request", "worker"] = "worker"  # where uploads are decoded: in the batch, or a pool
    decode_threads: int = Field(default=2, ge=1)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)  # request body limit -> 413
    max_batch_files: int = Field(default=32, ge=1)  # files per /predict/batch
    max_image_pixels: int = Field(default=4096 * 4096, ge=1)  # decoded size limit (bombs) -> 413
    shutdown_timeout_s: float = Field(default=20.0, ge=0)  # graceful shutdown: in-flight requests

    # AWS (region, profile and endpoint; credentials come from boto3's usual chain)
    aws_region: str | None = None  # None: AWS_REGION, AWS_DEFAULT_REGION or the profile's, as the AWS CLI
    aws_profile: str | None = None
    aws_endpoint_url: str | None = None

    # Shipping container (`deploy image`): build the image and push it to ECR
    image_repository: str = "eurosat-service"  # the ECR repository name
    image_keep_count: int = Field(default=10, ge=1)  # the lifecycle policy expires older images
    image_builder: Literal["auto", "docker", "buildah", "podman"] = "auto"
    image_build_network: str | None = None  # e.g. "host" so a build reaches a loopback wheel server
    image_pip_cert: Path | None = None  # a proxy's CA for pip inside the build (default: $PIP_CERT)
    registry_url: str | None = None  # push to this registry instead of the host ECR reports
    image_idle_timeout_s: float = Field(default=1800.0, gt=0)  # a build or push silent this long is stopped

    # Launch control (`deploy`): sizes are Fargate CPU units / MiB, checked before any AWS call
    deploy_name_prefix: str = "eurosat"
    deploy_cpu: int = 256
    deploy_memory: int = 512
    deploy_desired_count: int = 1
    deploy_log_retention_days: int = 7
    deploy_wait_timeout: float = Field(default=900.0, gt=0)  # seconds for the service to be stable/inactive
    deploy_poll_seconds: float = Field(default=10.0, gt=0)
    deploy_model_uri: str | None = None  # EUROSAT_MODEL_URI inside the task; None keeps the image's model
    # per-region overrides of the Fargate list prices, JSON: {"eu-west-1": {"vcpu_hour": .., "gb_hour": ..}};
    # NoDecode: parsed below, so bad JSON is a validation error naming the variable, not SettingsError
    fargate_prices: Annotated[dict[str, dict[str, float]], NoDecode] = Field(default_factory=dict)

    @field_validator("views")
    @classmethod
    def _known_view_set(cls, views: int) -> int:
        view_transforms(views)
        return views

    @field_validator("aws_region")
    @classmethod
    def _region_name(cls, region: str | None) -> str | None:
        if region:  # "" is unset, as boto3 takes it
            try:
                check_region(region)
            except InvalidDeploymentConfig as exc:
                raise ValueError(str(exc)) from None
        return region

    @field_validator("aws_endpoint_url")
    @classmethod
    def _endpoint_url(cls, url: str | None) -> str | None:
        if url:  # "" is unset: AWS itself
            check_endpoint_url(url)
        return url

    @field_validator("deploy_model_uri")
    @classmethod
    def _task_model_uri(cls, uri: str | None) -> str | None:
        if uri:  # "" keeps the image's model
            check_task_model_uri(uri)
        return uri

    @field_validator("fargate_prices", mode="before")
    @classmethod
    def _prices_json(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc}); expected "
                                 '{"<region>": {"vcpu_hour": <USD>, "gb_hour": <USD>}}') from None
        return value

    @field_validator("fargate_prices")
    @classmethod
    def _prices_usable(cls, overrides: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for region, given in overrides.items():  # every region, so a typo is not found only when used
            FargatePrices.override(region, given)
        return overrides


def check_endpoint_url(url: str) -> None:
    """One rule for --endpoint-url, checked before any client exists: botocore refuses a bad one
    only when it builds its first client, with a bare ``ValueError`` (a traceback), and a scheme
    it does not speak (ftp://) only at the first request."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed or malformed [IPv6] host
        raise ValueError(f"{url!r} is not a URL ({exc}); expected {ENDPOINT_FORM}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"{url!r} does not start with http:// or https://; expected {ENDPOINT_FORM}")
    host = parts.hostname or ""
    if any(c.isspace() for c in url) or not (_HOST_NAME.match(host) or _is_ip_address(host)):
        raise ValueError(f"{url!r} has no valid host name; expected {ENDPOINT_FORM}")
    try:
        port = parts.port
    except ValueError:  # not a number, or above 65535
        port = 0
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"{url!r}: the port must be a number from 1 to 65535; expected {ENDPOINT_FORM}")


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def load_settings(flags: Mapping[str, object] | None = None, flag_names: Mapping[str, str] | None = None) -> Settings:
    """The environment's settings with ``flags`` over them. A bad value is one ``EurosatError``
    naming it as the user gave it (``--port`` for a flag, ``EUROSAT_PORT`` otherwise), never
    pydantic's multi-line report. ``flag_names`` maps a setting to its flag where the two differ
    (``deploy_wait_timeout``: ``--wait-timeout``)."""
    flags, flag_names = dict(flags or {}), flag_names or {}
    try:
        return Settings(**flags)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field, *inside = map(str, error["loc"])  # inside: keys within a JSON setting, not a variable name
            name = (flag_names.get(field, f"--{field.replace('_', '-')}") if field in flags
                    else f"EUROSAT_{field.upper()}")
            where = f"at {''.join(f'[{json.dumps(key)}]' for key in inside)}: " if inside else ""
            message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
            problems.append(f"{name}: {where}{message}")
        raise EurosatError(f"invalid setting: {'; '.join(problems)}") from None
