"""Launch control's use cases over in-memory fakes: order, idempotence, failures, teardown, smoke."""

from __future__ import annotations

import json

import pytest

from eurosat_service.domain.deployment import (
    DeploymentNames,
    DeploymentSpec,
    LogEvent,
    ServiceState,
    TaskState,
    prices_for,
)
from eurosat_service.domain.errors import (
    CloudAccessError,
    DeploymentError,
    DeploymentTimeout,
    InvalidDeploymentConfig,
    ServiceUnhealthy,
)
from eurosat_service.domain.land_cover import EUROSAT_CLASSES
from eurosat_service.domain.model_uri import S3Model
from eurosat_service.domain.ports import HttpReply
from eurosat_service.service_layer import deployment as launch
from eurosat_service.service_layer.smoke import smoke
from tests.unit.fakes import (
    FakeCloudAccount,
    FakeDeployer,
    FakeEndpointProbe,
    FakeLogGroups,
    FakeNetwork,
    FakeRepositoryRemover,
    FakeTaskRoles,
)

NAMES = DeploymentNames("demo")
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/eurosat-service:v1"


class Clock:
    """Time that moves only when the use case sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def journal() -> list[str]:
    return []


@pytest.fixture
def cloud(journal) -> launch.Cloud:
    return launch.Cloud(FakeCloudAccount(), FakeLogGroups(journal), FakeTaskRoles(journal), FakeNetwork(journal),
                        FakeDeployer(journal))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def waiting(clock) -> launch.Waiting:
    return launch.Waiting(timeout=60, poll=5, iam_propagation=0, clock=clock, sleep=clock.sleep)


def spec(**kw) -> DeploymentSpec:
    return DeploymentSpec(names=NAMES, region="us-east-1", image_uri=kw.pop("image_uri", IMAGE), **kw)


def test_plan_lists_every_resource_and_the_cost_without_any_cloud():
    result = launch.plan(spec(model_uri="s3://bucket/models"), prices_for("us-east-1"))
    text = "\n".join(result.resources)
    for expected in ("/ecs/demo-api", "demo-execution-role", "demo-task-role", "s3://bucket/models", "demo-http",
                     "inbound TCP 80 only", "demo-cluster", "256 CPU units / 512 MiB", "circuit breaker"):
        assert expected in text
    assert result.cost.hourly == pytest.approx(0.0173425)


def test_up_creates_in_order_with_tags_and_waits(cloud, journal, waiting):
    steps: list[str] = []
    result = launch.up(spec(), cloud, waiting, on_step=steps.append)
    assert journal == ["create log group /ecs/demo-api", "create role demo-execution-role",
                       "create security group demo-http", "create cluster demo-cluster",
                       "register task definition demo-api:1", "create service demo-api"]
    assert result.service_change == "created" and result.task_definition.revision == 1
    assert result.endpoint is None  # no task with a public IP yet
    assert len(result.created) == 6 and any("123456789012" in s for s in steps)
    service = cloud.deployer.services[("demo-cluster", "demo-api")]
    assert service["tags"] == NAMES.tags and service["spec"].security_group_ids == ("sg-1",)
    assert service["spec"].subnet_ids == ("subnet-a", "subnet-b")
    assert cloud.log_groups.groups["/ecs/demo-api"]["retention"] == 7


def test_up_twice_changes_nothing_and_a_new_image_rolls_the_service(cloud, journal, waiting):
    launch.up(spec(), cloud, waiting)
    journal.clear()
    again = launch.up(spec(), cloud, waiting)
    assert journal == [] and again.service_change == "unchanged" and not again.created
    rolled = launch.up(spec(image_uri=IMAGE.replace("v1", "v2")), cloud, waiting)
    assert journal == ["register task definition demo-api:2", "update service demo-api"]
    assert rolled.service_change == "updated" and rolled.task_definition.revision == 2


def test_a_new_role_gets_time_to_propagate_before_the_service_starts(cloud, clock):
    waiting = launch.Waiting(timeout=60, poll=5, iam_propagation=10, clock=clock, sleep=clock.sleep)
    steps: list[str] = []
    launch.up(spec(), cloud, waiting, on_step=steps.append)
    assert clock.now == 10 and "waiting 10 s for the new IAM role to propagate" in steps
    launch.up(spec(), cloud, waiting)
    assert clock.now == 10  # the role already existed: no wait


def test_an_s3_model_gets_a_read_only_task_role(cloud, waiting):
    launch.up(spec(model_uri="s3://models-bucket/eurosat/v3"), cloud, waiting)
    assert cloud.roles.roles["demo-task-role"]["policy"] == {"model": S3Model("models-bucket", "eurosat/v3")}
    definition = cloud.deployer.revisions["demo-api"][0]["spec"]
    assert definition.task_role_arn.endswith("demo-task-role")
    assert definition.environment["EUROSAT_MODEL_URI"] == "s3://models-bucket/eurosat/v3"


def test_missing_credentials_or_default_vpc_stop_up_before_anything_is_made(cloud, journal, waiting):
    no_credentials = launch.Cloud(FakeCloudAccount(None), cloud.log_groups, cloud.roles, cloud.network, cloud.deployer)
    with pytest.raises(CloudAccessError):
        launch.up(spec(), no_credentials, waiting)
    cloud.network.default_vpc = False
    with pytest.raises(DeploymentError, match="no default VPC"):
        launch.up(spec(), cloud, waiting)
    assert journal == []


def test_up_without_an_image_is_refused(cloud, journal, waiting):
    with pytest.raises(InvalidDeploymentConfig, match="no image"):
        launch.up(spec(image_uri=""), cloud, waiting)
    assert journal == []


def test_the_wait_reports_progress_until_the_rollout_completes(cloud, waiting):
    target = "arn:task-definition/demo-api:1"
    cloud.deployer.script = [
        ServiceState("demo-api", "ACTIVE", 1, 0, 1, target, "IN_PROGRESS"),
        ServiceState("demo-api", "ACTIVE", 1, 1, 0, target, "IN_PROGRESS", deployments=1),
        ServiceState("demo-api", "ACTIVE", 1, 1, 0, target, "COMPLETED"),
    ]
    progress = []
    launch.up(spec(), cloud, waiting, on_progress=lambda stage, values: progress.append((stage, dict(values))))
    assert [p[1]["elapsed"] for p in progress] == [0, 5, 10]
    assert progress[0][1]["pending"] == 1 and progress[-1][1]["running"] == 1


def test_a_service_that_never_gets_healthy_shows_events_and_stopped_reasons(cloud, waiting):
    target = "arn:task-definition/demo-api:1"
    cloud.deployer.script = [ServiceState(
        "demo-api", "ACTIVE", 1, 0, 0, target, "FAILED", "circuit breaker: 3 tasks failed",
        events=("(service demo-api) deployment failed: tasks failed to start.",))]
    cloud.deployer.stopped = [TaskState(
        "arn:task/demo-cluster/abc123", "STOPPED", stopped_reason="Task failed container health checks",
        container_reasons=("api: exit code 1",))]
    with pytest.raises(ServiceUnhealthy) as caught:
        launch.up(spec(), cloud, waiting)
    message = str(caught.value)
    for expected in ("never became healthy", "circuit breaker: 3 tasks failed", "deployment failed",
                     "task abc123: Task failed container health checks (api: exit code 1)", "`down`"):
        assert expected in message


def test_up_again_retries_a_failed_first_rollout_with_a_new_deployment(cloud, journal, waiting):
    target = "arn:task-definition/demo-api:1"
    failed = ServiceState("demo-api", "ACTIVE", 1, 0, 0, target, "FAILED", "tasks failed to start",
                          events=("(service demo-api) deployment failed: tasks failed to start.",))
    cloud.deployer.script = [failed]
    with pytest.raises(ServiceUnhealthy):
        launch.up(spec(), cloud, waiting)  # nothing to roll back to: the service stays on the failed rollout
    journal.clear()
    # the cause is fixed (say, the image is pushed now) and nothing in the settings changed: `up` again
    cloud.deployer.script = [
        failed,  # what `up` sees before deciding
        ServiceState("demo-api", "ACTIVE", 1, 0, 1, target, "IN_PROGRESS", deployments=2,  # the old one lingers
                     events=failed.events),
        ServiceState("demo-api", "ACTIVE", 1, 1, 0, target, "COMPLETED"),
    ]
    steps: list[str] = []
    result = launch.up(spec(), cloud, waiting, on_step=steps.append)
    assert journal == ["force new deployment demo-api"] and cloud.deployer.forced == 1
    assert result.service_change == "restarted" and "service demo-api: restarted" in steps
    assert result.service.rollout_state == "COMPLETED"


def test_up_again_lets_a_rollout_in_progress_finish_instead_of_restarting_it(cloud, journal, waiting):
    target = "arn:task-definition/demo-api:1"
    launch.up(spec(), cloud, waiting)
    journal.clear()
    cloud.deployer.script = [  # say the first `up` timed out while its healthy rollout went on
        ServiceState("demo-api", "ACTIVE", 1, 0, 1, target, "IN_PROGRESS", deployments=2),
        ServiceState("demo-api", "ACTIVE", 1, 1, 0, target, "COMPLETED"),
    ]
    result = launch.up(spec(), cloud, waiting)
    assert cloud.deployer.forced == 0 and "force new deployment demo-api" not in journal
    assert result.service_change == "unchanged" and result.service.rollout_state == "COMPLETED"


def test_up_again_leaves_a_stable_service_alone(cloud, waiting):
    launch.up(spec(), cloud, waiting)
    assert launch.up(spec(), cloud, waiting).service_change == "unchanged" and cloud.deployer.forced == 0


def test_a_rollback_to_an_older_revision_is_a_failure(cloud, waiting):
    launch.up(spec(), cloud, waiting)
    cloud.deployer.script = [ServiceState("demo-api", "ACTIVE", 1, 1, 0, "arn:task-definition/demo-api:1",
                                          "COMPLETED")]
    with pytest.raises(ServiceUnhealthy):
        launch.up(spec(image_uri=IMAGE.replace("v1", "broken")), cloud, waiting)


def test_a_service_that_stays_pending_times_out(cloud, waiting, clock):
    cloud.deployer.script = [ServiceState("demo-api", "ACTIVE", 1, 0, 1, "arn:task-definition/demo-api:1",
                                          "IN_PROGRESS")]
    with pytest.raises(DeploymentTimeout, match="was not stable after 60 s"):
        launch.up(spec(), cloud, waiting)
    assert clock.now == 60


def test_the_public_ip_comes_from_the_task_network_interface(cloud, waiting):
    cloud.deployer.running = [TaskState("arn:task/demo-cluster/t1", "RUNNING", "HEALTHY",
                                        network_interface_id="eni-1", private_ip="10.0.0.5")]
    cloud.network.public_ips["eni-1"] = "54.1.2.3"
    assert launch.up(spec(), cloud, waiting).endpoint == "http://54.1.2.3"
    probe = FakeEndpointProbe({("GET", "/readyz"): [HttpReply(200, b"{}", 0.02)]})
    current = launch.status(NAMES, "us-east-1", cloud, probe)
    assert current.deployed and current.endpoint == "http://54.1.2.3" and current.image_uri == IMAGE
    assert current.tasks[0].public_ip == "54.1.2.3" and current.health.startswith("ready")


def test_status_without_ip_or_deployment(cloud, waiting):
    assert launch.status(NAMES, "us-east-1", cloud).health == "not deployed"
    launch.up(spec(), cloud, waiting)
    cloud.deployer.running = [TaskState("arn:task/c/t1", "RUNNING", "UNKNOWN", network_interface_id="eni-9")]
    current = launch.status(NAMES, "us-east-1", cloud)
    assert current.endpoint is None and "no public IP yet" in current.health


def test_down_removes_everything_in_reverse_and_twice_is_fine(cloud, journal, waiting):
    launch.up(spec(), cloud, waiting)
    launch.up(spec(image_uri=IMAGE.replace("v1", "v2")), cloud, waiting)
    journal.clear()
    report = launch.down(NAMES, cloud, waiting)
    assert journal == ["delete service demo-api", "deregister arn:task-definition/demo-api:1",
                       "deregister arn:task-definition/demo-api:2", "delete cluster demo-cluster",
                       "delete security group sg-1", "delete log group /ecs/demo-api",
                       "delete role demo-execution-role"]
    assert report.clean and len(report.removed) == 7
    again = launch.down(NAMES, cloud, waiting)
    assert again.clean and again.removed == ()


def test_down_after_a_half_finished_up(cloud, journal, waiting):
    def broken(name, tags):
        raise DeploymentError("injected")

    cloud.deployer.ensure_cluster = broken
    with pytest.raises(DeploymentError, match="injected"):
        launch.up(spec(), cloud, waiting)
    assert journal[-1] == "create security group demo-http"
    report = launch.down(NAMES, cloud, waiting)
    assert report.clean
    assert cloud.log_groups.groups == {} and cloud.roles.roles == {} and cloud.network.groups == {}


def test_down_leaves_other_deployments_alone(cloud, waiting):
    launch.up(spec(), cloud, waiting)
    other = DeploymentNames("other")
    launch.up(DeploymentSpec(names=other, region="us-east-1", image_uri=IMAGE), cloud, waiting)
    launch.down(NAMES, cloud, waiting)
    assert launch.leftovers(NAMES, cloud) == []
    still = {str(r) for r in launch.leftovers(other, cloud)}
    assert {"cluster other-cluster", "IAM role other-execution-role"} <= still


def test_down_retries_a_security_group_still_in_use(cloud, waiting, clock):
    launch.up(spec(), cloud, waiting)
    cloud.network.busy = 2
    assert launch.down(NAMES, cloud, waiting).clean
    assert clock.now == 10


def test_down_lists_what_it_could_not_remove(cloud, waiting):
    launch.up(spec(), cloud, waiting)
    cloud.network.busy = 10**6
    report = launch.down(NAMES, cloud, waiting)
    assert not report.clean
    assert [str(r) for r in report.remaining] == ["security group demo-http (sg-1)"]
    assert report.problems == ("security group demo-http (sg-1): sg-1 in use",)


def test_down_deletes_only_repositories_tagged_as_the_deployments(cloud, waiting):
    launch.up(spec(), cloud, waiting)  # runs IMAGE, in eurosat-service
    repositories = FakeRepositoryRemover({
        "eurosat-service": NAMES.tags,  # made by `image --prefix demo`
        "demo-extra": NAMES.tags,
        "other-team": {"team": "x"},
        "other-deployment": DeploymentNames("other").tags,
    })
    report = launch.down(NAMES, cloud, waiting, repository=launch.RepositoryRemoval(repositories, "us-east-1"))
    assert report.clean and report.kept == ()
    assert set(repositories.repositories) == {"other-team", "other-deployment"}
    assert {"ECR repository eurosat-service", "ECR repository demo-extra"} <= set(report.removed)


def test_down_keeps_a_foreign_repository_the_image_was_pushed_to(cloud, waiting):
    launch.up(spec(), cloud, waiting)
    repositories = FakeRepositoryRemover({"eurosat-service": {}})  # existed before `image`, untagged
    report = launch.down(NAMES, cloud, waiting, repository=launch.RepositoryRemoval(repositories, "us-east-1"))
    assert "eurosat-service" in repositories.repositories and report.clean
    assert report.kept == (("ECR repository eurosat-service: not created by this tool for deployment 'demo' "
                            "(its tags differ); left in place"),)
    named = launch.down(NAMES, cloud, waiting,
                        repository=launch.RepositoryRemoval(repositories, "us-east-1", name="eurosat-service"))
    assert "eurosat-service" in repositories.repositories and len(named.kept) == 1


def test_down_never_deletes_a_same_named_repository_of_another_region(cloud, waiting):
    launch.up(spec(image_uri=IMAGE.replace("us-east-1", "eu-west-1")), cloud, waiting)
    repositories = FakeRepositoryRemover({"eurosat-service": {}})  # this region's, someone else's
    report = launch.down(NAMES, cloud, waiting, repository=launch.RepositoryRemoval(repositories, "us-east-1"))
    assert "eurosat-service" in repositories.repositories and report.clean
    assert "region eu-west-1, not this one (123456789012, us-east-1)" in report.kept[0]


def test_down_with_no_repository_of_the_deployment_deletes_none(cloud, waiting):
    repositories = FakeRepositoryRemover({"eurosat-service": {"project": "eurosat-service"}})
    report = launch.down(NAMES, cloud, waiting, repository=launch.RepositoryRemoval(repositories, "us-east-1"))
    assert report.clean and report.removed == () and "eurosat-service" in repositories.repositories


def test_logs_print_new_events_once_while_following(cloud):
    reader = cloud.log_groups
    reader.groups["/ecs/demo-api"] = {"tags": NAMES.tags}
    stream = "api/api/t1"
    reader.events_by_group["/ecs/demo-api"] = [LogEvent(1000, stream, "old"), LogEvent(5000, stream, "started")]
    seen: list[str] = []
    polls = iter(range(3))

    def later_events() -> bool:
        n = next(polls)
        if n == 0:
            reader.events_by_group["/ecs/demo-api"].append(LogEvent(5000, stream, "same ms", "e3"))
            reader.events_by_group["/ecs/demo-api"].append(LogEvent(7000, stream, "ready"))
        return n >= 1

    count = launch.read_logs(reader, NAMES, 2000, lambda e: seen.append(e.message), follow=True,
                             waiting=launch.Waiting(poll=0, sleep=lambda s: None), should_stop=later_events)
    assert seen == ["started", "same ms", "ready"] and count == 3


def test_logs_of_nothing_deployed_say_so(cloud):
    with pytest.raises(DeploymentError, match="no log group /ecs/demo-api"):
        launch.read_logs(cloud.log_groups, NAMES, 0, print)


def prediction(label="Forest", **changes) -> bytes:
    body = {"label": label, "confidence": 0.9, "model_version": "v1",
            "probabilities": {c: (0.9 if c == label else 0.1 / 9) for c in EUROSAT_CLASSES}}
    body.update(changes)
    return json.dumps(body).encode()


def test_smoke_passes_on_a_ready_api_with_a_wellformed_prediction(clock):
    probe = FakeEndpointProbe({("GET", "/readyz"): [HttpReply(503), HttpReply(200, b"{}", 0.01)],
                               ("POST", "/predict"): [HttpReply(200, prediction(), 0.05)]})
    report = smoke("http://api.example/", probe, b"jpeg",
                          waiting=launch.Waiting(timeout=10, poll=1, clock=clock, sleep=clock.sleep))
    assert report.passed and report.url == "http://api.example"
    assert probe.calls == [("GET", "/readyz"), ("GET", "/readyz"), ("POST", "/predict")]
    assert "Forest (0.90)" in report.checks[1].detail


@pytest.mark.parametrize("reply, problem", [
    (HttpReply(500, b"boom"), "500"),
    (HttpReply(200, b"not json"), "not a prediction"),
    (HttpReply(200, prediction(label="Moon")), "unknown label"),
    (HttpReply(200, prediction(confidence=1.5)), "outside 0..1"),
    (HttpReply(200, prediction(probabilities={"Forest": 1.0})), "one per EuroSAT class"),
])
def test_smoke_fails_on_a_bad_prediction(reply, problem, clock):
    probe = FakeEndpointProbe({("GET", "/readyz"): [HttpReply(200)], ("POST", "/predict"): [reply]})
    report = smoke("http://x", probe, b"jpeg", waiting=launch.Waiting(timeout=0, clock=clock))
    assert not report.passed and problem in report.checks[-1].detail


def test_smoke_fails_when_the_api_never_gets_ready(clock):
    probe = FakeEndpointProbe({})
    report = smoke("http://x", probe, b"jpeg",
                          waiting=launch.Waiting(timeout=3, poll=1, clock=clock, sleep=clock.sleep))
    assert not report.passed and len(report.checks) == 1 and "connection refused" in report.checks[0].detail
    assert ("POST", "/predict") not in probe.calls
