"""A deployment on ECS Fargate in the problem's terms: its size, price, names, tags and state.

Plain Python. Everything here is decided before any AWS call, so a bad setting is refused
before a single resource exists; the adapters turn these values into boto3 requests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from eurosat_service.domain.errors import InvalidDeploymentConfig
from eurosat_service.domain.model_uri import S3Model, check_task_model_uri

PROJECT = "eurosat-service"
PROJECT_TAG_KEY = "project"
DEPLOYMENT_TAG_KEY = "eurosat-service:deployment"
CONTAINER_PORT = 80  # awsvpc maps host port == container port; the image listens on 80
HOURS_PER_MONTH = 730  # AWS's own convention in its pricing examples

# Valid Fargate Linux task sizes: CPU units -> allowed memory (MiB). AWS rejects anything else,
# moto does not, so the job checks it itself.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

# The only values CloudWatch Logs accepts for a retention policy.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)

# Set by the deployment itself: --env may not override them in any case, since the API's settings
# read EUROSAT_* names case-insensitively (see DeploymentSpec).
RESERVED_ENVIRONMENT = {
    "EUROSAT_MODEL_URI": "pass --model-uri instead: it also creates the task role allowed to read that model",
    "EUROSAT_HOST": "the deployment sets it: the container listens on 0.0.0.0",
    "EUROSAT_PORT": f"the deployment sets it: port {CONTAINER_PORT} is the one the port mapping, the security "
                    "group and the health check use",
}

_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
# Every AWS region name: lowercase words and a number joined by dashes (eu-west-1, us-gov-west-1,
# cn-north-1, us-isob-east-1). Not an availability zone (eu-west-1a), not a path, not spaced.
_REGION = re.compile(r"^[a-z]+(?:-[a-z]+)+-[0-9]+$")
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*?)(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


def check_region(region: str) -> None:
    """botocore only refuses a malformed region when it builds a client (if at all): refuse it first."""
    if not _REGION.match(region):
        raise InvalidDeploymentConfig(
            f"AWS region {region!r} is not an AWS region name: expected lowercase words and a number joined "
            "by dashes, such as eu-west-1, us-gov-west-1 or cn-north-1")


def check_fargate_size(cpu: int, memory: int) -> None:
    if cpu not in FARGATE_SIZES:
        raise InvalidDeploymentConfig(
            f"Fargate has no task size with {cpu} CPU units; choose one of {sorted(FARGATE_SIZES)}")
    allowed = FARGATE_SIZES[cpu]
    if memory not in allowed:
        shown = ", ".join(str(m) for m in allowed)
        raise InvalidDeploymentConfig(
            f"Fargate refuses {cpu} CPU units with {memory} MiB; with {cpu} CPU units memory must be one of: {shown}")


@dataclass(frozen=True)
class EcrImage:
    account: str
    region: str
    repository: str

    @classmethod
    def parse(cls, image_uri: str) -> EcrImage | None:
        """The ECR repository an image URI points at, or None for any other registry."""
        match = _ECR_IMAGE.match(image_uri)
        return cls(match["account"], match["region"], match["repository"]) if match else None


@dataclass(frozen=True)
class FargatePrices:
    """On-demand USD prices per hour for a region (Linux/x86)."""

    vcpu_hour: float
    gb_hour: float
    public_ipv4_hour: float = 0.005
    source: str = ""

    @classmethod
    def override(cls, region: str, given: Mapping[str, float]) -> FargatePrices:
        """One region's entry of EUROSAT_FARGATE_PRICES; ``ValueError`` for a shape or price that
        would make a wrong estimate (a missing key, a negative or non-finite price, a non-region)."""
        try:
            check_region(region)
        except InvalidDeploymentConfig as exc:
            raise ValueError(str(exc)) from None
        keys = {"vcpu_hour", "gb_hour", "public_ipv4_hour"}
        if not {"vcpu_hour", "gb_hour"} <= set(given) <= keys:
            raise ValueError(f"{region!r} needs vcpu_hour and gb_hour (and optionally public_ipv4_hour), "
                             f"got {sorted(given)}")
        prices = {key: float(value) for key, value in given.items()}
        for key, price in prices.items():
            if not (math.isfinite(price) and price >= 0):
                raise ValueError(f"{region!r}: {key} must be 0 or more, got {price}")
        return cls(**prices, source=f"{region} price from EUROSAT_FARGATE_PRICES")


# Fargate on-demand list prices for Linux/x86 at the time of writing (2025), from
# https://aws.amazon.com/fargate/pricing/ ; a public IPv4 address costs $0.005/h since Feb 2024.
# Prices change and differ by region: override them with EUROSAT_FARGATE_PRICES.
LIST_PRICES: dict[str, FargatePrices] = {
    "us-east-1": FargatePrices(0.04048, 0.004445, 0.005, "us-east-1 list price at time of writing"),
}


def prices_for(region: str, overrides: Mapping[str, Mapping[str, float]] | None = None) -> FargatePrices:
    """The region's prices: an override if given, a recorded list price, else us-east-1's, labelled so."""
    if overrides and region in overrides:
        try:
            return FargatePrices.override(region, overrides[region])
        except ValueError as exc:
            raise InvalidDeploymentConfig(f"EUROSAT_FARGATE_PRICES: {exc}") from None
    if region in LIST_PRICES:
        return LIST_PRICES[region]
    base = LIST_PRICES["us-east-1"]
    return FargatePrices(base.vcpu_hour, base.gb_hour, base.public_ipv4_hour,
                         f"no price recorded for {region}: us-east-1 list price used (set EUROSAT_FARGATE_PRICES)")


@dataclass(frozen=True)
class CostEstimate:
    cpu: int
    memory: int
    tasks: int
    prices: FargatePrices

    @property
    def vcpu(self) -> float:
        return self.cpu / 1024

    @property
    def memory_gb(self) -> float:
        return self.memory / 1024

    @property
    def compute_hourly(self) -> float:
        return self.tasks * (self.vcpu * self.prices.vcpu_hour + self.memory_gb * self.prices.gb_hour)

    @property
    def ipv4_hourly(self) -> float:
        return self.tasks * self.prices.public_ipv4_hour

    @property
    def hourly(self) -> float:
        return self.compute_hourly + self.ipv4_hourly

    @property
    def monthly(self) -> float:
        return self.hourly * HOURS_PER_MONTH

    def lines(self) -> list[str]:
        return [
            f"{self.tasks} task(s) of {self.vcpu:g} vCPU / {self.memory_gb:g} GB: "
            f"${self.compute_hourly:.5f}/h compute + ${self.ipv4_hourly:.4f}/h public IPv4",
            f"estimated ${self.hourly:.4f} per hour, ${self.monthly:.2f} per month ({HOURS_PER_MONTH} h) "
            f"[{self.prices.source}]",
            "Fargate is not in the AWS free tier: run `down` when you are done.",
        ]


@dataclass(frozen=True)
class DeploymentNames:
    """Every resource name follows from the prefix, so `down` needs nothing but the prefix."""

    prefix: str

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix) or "--" in self.prefix:
            raise InvalidDeploymentConfig(
                f"name prefix {self.prefix!r} must be 2-32 lowercase letters, digits or single hyphens, "
                "starting with a letter")

    @property
    def cluster(self) -> str:
        return f"{self.prefix}-cluster"

    @property
    def service(self) -> str:
        return f"{self.prefix}-api"

    @property
    def family(self) -> str:
        return f"{self.prefix}-api"

    @property
    def container(self) -> str:
        return "api"

    @property
    def log_group(self) -> str:
        return f"/ecs/{self.prefix}-api"

    @property
    def execution_role(self) -> str:
        return f"{self.prefix}-execution-role"

    @property
    def task_role(self) -> str:
        return f"{self.prefix}-task-role"

    @property
    def security_group(self) -> str:
        return f"{self.prefix}-http"

    @property
    def tags(self) -> dict[str, str]:
        return {PROJECT_TAG_KEY: PROJECT, DEPLOYMENT_TAG_KEY: self.prefix}


def carries(tags: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """True when ``tags`` hold every key and value of ``wanted``: how `down` knows what is its own."""
    return all(tags.get(k) == v for k, v in wanted.items())


# The container health check: slim images have no curl, the image has python.
HEALTH_CHECK_COMMAND = (
    "CMD", "python3", "-c",
    "import sys, urllib.request as u; "
    f"sys.exit(0 if u.urlopen('http://127.0.0.1:{CONTAINER_PORT}/readyz', timeout=4).status == 200 else 1)",
)


@dataclass(frozen=True)
class DeploymentSpec:
    """What `up` should make true. Validated on construction, before any AWS call."""

    names: DeploymentNames
    region: str
    image_uri: str
    cpu: int = 256
    memory: int = 512
    desired_count: int = 1
    log_retention_days: int = 7
    model_uri: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fargate_size(self.cpu, self.memory)
        if not 1 <= self.desired_count <= 10:
            raise InvalidDeploymentConfig(f"desired count must be between 1 and 10, got {self.desired_count}")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise InvalidDeploymentConfig(
                f"log retention of {self.log_retention_days} days is not allowed by CloudWatch; "
                f"choose one of {LOG_RETENTION_DAYS}")
        if not self.region:
            raise InvalidDeploymentConfig("no AWS region: pass --region or set EUROSAT_AWS_REGION")
        check_region(self.region)  # also one from AWS_REGION or the profile, which no setting checked
        bad = [k for k in self.environment if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k)]
        if bad:
            raise InvalidDeploymentConfig(f"invalid environment variable names: {bad}")
        settings: dict[str, str] = {}  # the API's settings ignore case: EUROSAT_PORT is eurosat_port
        for key in self.environment:
            name = key.upper()
            if name in RESERVED_ENVIRONMENT:
                read_as = f"the API reads it as {name}; " if key != name else ""
                raise InvalidDeploymentConfig(f"--env {key} is not allowed: {read_as}{RESERVED_ENVIRONMENT[name]}")
            if name.startswith("EUROSAT_") and name in settings:
                raise InvalidDeploymentConfig(f"--env {settings[name]} and {key} set the same setting: the API "
                                              "reads EUROSAT_* names in any case; pass it once")
            settings[name] = key
        if self.model_uri:  # one the running task would refuse is refused now, before any AWS call
            try:
                check_task_model_uri(self.model_uri)
            except ValueError as exc:
                raise InvalidDeploymentConfig(str(exc)) from None

    @property
    def tags(self) -> dict[str, str]:
        return self.names.tags

    @property
    def s3_model(self) -> S3Model | None:
        try:
            return S3Model.parse(self.model_uri)
        except ValueError as exc:
            raise InvalidDeploymentConfig(str(exc)) from None

    def container_environment(self) -> dict[str, str]:
        env = {**self.environment, "EUROSAT_HOST": "0.0.0.0", "EUROSAT_PORT": str(CONTAINER_PORT)}
        if self.model_uri:
            env["EUROSAT_MODEL_URI"] = self.model_uri
            if not any(key.upper() == "EUROSAT_AWS_REGION" for key in env):  # the user's, in any case, wins
                env["EUROSAT_AWS_REGION"] = self.region
        return dict(sorted(env.items()))

    def cost(self, prices: FargatePrices) -> CostEstimate:
        return CostEstimate(self.cpu, self.memory, self.desired_count, prices)

    def task_definition(self, execution_role_arn: str, task_role_arn: str | None) -> TaskDefinitionSpec:
        return TaskDefinitionSpec(
            family=self.names.family,
            container=self.names.container,
            image_uri=self.image_uri,
            cpu=self.cpu,
            memory=self.memory,
            port=CONTAINER_PORT,
            environment=self.container_environment(),
            log_group=self.names.log_group,
            region=self.region,
            execution_role_arn=execution_role_arn,
            task_role_arn=task_role_arn,
            health_check=HEALTH_CHECK_COMMAND,
            tags=self.tags,
        )


@dataclass(frozen=True)
class TaskDefinitionSpec:
    family: str
    container: str
    image_uri: str
    cpu: int
    memory: int
    port: int
    environment: Mapping[str, str]
    log_group: str
    region: str
    execution_role_arn: str
    task_role_arn: str | None
    health_check: tuple[str, ...]
    tags: Mapping[str, str]


@dataclass(frozen=True)
class Ensured:
    """The result of a get-or-create: the resource's id (name, ARN or AWS id) and whether it is new."""

    id: str
    created: bool


@dataclass(frozen=True)
class TaskDefinitionRef:
    arn: str
    revision: int
    created: bool
    image_uri: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Placement:
    """Where tasks run: the default VPC and its public subnets."""

    vpc_id: str
    subnet_ids: tuple[str, ...]


@dataclass(frozen=True)
class ServiceSpec:
    cluster: str
    name: str
    task_definition_arn: str
    desired_count: int
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    tags: Mapping[str, str]


@dataclass(frozen=True)
class ServiceState:
    name: str
    status: str  # ACTIVE, DRAINING, INACTIVE
    desired: int
    running: int
    pending: int
    task_definition: str  # what the service is set to run (a rollback sets it back)
    rollout_state: str = ""  # of the PRIMARY deployment: IN_PROGRESS, COMPLETED, FAILED ("" if none given)
    rollout_reason: str = ""
    deployments: int = 1
    events: tuple[str, ...] = ()

    def failed_for(self, target_task_definition: str) -> bool:
        """The circuit breaker gave up on the current rollout, or rolled the service back to another
        revision. Only the PRIMARY rollout counts: a failed one that `up` replaced with a forced new
        deployment lingers beside it for a while and must not fail the retry."""
        return self.rollout_state == "FAILED" or self.task_definition != target_task_definition

    def stable_on(self, target_task_definition: str) -> bool:
        return (
            self.status == "ACTIVE"
            and self.deployments == 1
            and self.task_definition == target_task_definition
            and self.running == self.desired
            and self.pending == 0
            and self.rollout_state in ("", "COMPLETED")
        )


@dataclass(frozen=True)
class TaskState:
    arn: str
    last_status: str
    health: str = "UNKNOWN"
    task_definition: str = ""
    network_interface_id: str | None = None
    private_ip: str | None = None
    public_ip: str | None = None
    stopped_reason: str = ""
    container_reasons: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DeploymentStatus:
    names: DeploymentNames
    region: str
    service: ServiceState | None
    tasks: tuple[TaskState, ...] = ()
    image_uri: str = ""
    endpoint: str | None = None
    health: str = "unknown"

    @property
    def deployed(self) -> bool:
        return self.service is not None and self.service.status == "ACTIVE"


@dataclass(frozen=True)
class LogEvent:
    timestamp_ms: int
    stream: str
    message: str
    event_id: str = ""


@dataclass(frozen=True)
class Resource:
    """One AWS resource found by its tags or name, for `down`'s report."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"
