"""Launch control's use cases: plan, up, status, logs and down, as functions over the ports.

Order matters for a clean teardown: `up` reads (credentials, default VPC) before it creates
anything, then creates log group -> roles -> security group -> cluster -> task definition ->
service, each tagged; `down` finds the same things by their tags and removes them in reverse.
`down` deletes nothing it cannot prove is the deployment's own by its tags (ECR repositories
included); it never touches S3, where the tool creates nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial

from eurosat_service.domain.deployment import (
    CONTAINER_PORT,
    CostEstimate,
    DeploymentNames,
    DeploymentSpec,
    DeploymentStatus,
    EcrImage,
    FargatePrices,
    LogEvent,
    Resource,
    ServiceSpec,
    ServiceState,
    TaskDefinitionRef,
    TaskState,
    carries,
)
from eurosat_service.domain.errors import (
    DeploymentError,
    DeploymentTimeout,
    InvalidDeploymentConfig,
    ResourceInUse,
    ServiceUnhealthy,
)
from eurosat_service.domain.ports import (
    CloudAccount,
    Deployer,
    EndpointProbe,
    LogGroups,
    LogReader,
    Network,
    ProgressCallback,
    RepositoryRemover,
    TaskRoles,
)

log = logging.getLogger(__name__)

Step = Callable[[str], None]


def _quiet_step(message: str) -> None:
    log.info(message)


def _quiet_progress(stage: str, values: Mapping[str, float]) -> None:
    pass


@dataclass(frozen=True)
class Cloud:
    """The ports one deployment needs, bundled to keep the use cases' signatures short."""

    account: CloudAccount
    log_groups: LogGroups
    roles: TaskRoles
    network: Network
    deployer: Deployer


@dataclass(frozen=True)
class Waiting:
    """How long and how often to poll AWS; clock and sleep are swapped in unit tests."""

    timeout: float = 900.0
    poll: float = 10.0
    iam_propagation: float = 10.0  # IAM is eventually consistent: a new role is not usable at once
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


# -- plan -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    spec: DeploymentSpec
    resources: tuple[str, ...]
    cost: CostEstimate


def plan(spec: DeploymentSpec, prices: FargatePrices) -> Plan:
    """What `up` makes and what it costs; no AWS call, so it works without credentials."""
    n = spec.names
    resources = [
        f"CloudWatch log group {n.log_group} (retention {spec.log_retention_days} days)",
        f"IAM role {n.execution_role} (task execution: pull the image, write its logs; nothing else)",
    ]
    if spec.s3_model:
        resources.append(f"IAM role {n.task_role} (the app's own: may read {spec.s3_model} only)")
    resources += [
        f"security group {n.security_group} in the default VPC (inbound TCP {CONTAINER_PORT} only, "
        "outbound HTTPS only)",
        f"ECS cluster {n.cluster}",
        f"task definition {n.family} (Fargate, {spec.cpu} CPU units / {spec.memory} MiB, "
        f"image {spec.image_uri or '<none yet>'})",
        f"ECS service {n.service} ({spec.desired_count} task(s) in public subnets with a public IP, "
        "circuit breaker with rollback)",
    ]
    return Plan(spec, tuple(resources), spec.cost(prices))


# -- up -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UpResult:
    task_definition: TaskDefinitionRef
    service_change: str  # created, updated, restarted (same settings, new rollout), unchanged
    created: tuple[str, ...]
    service: ServiceState
    public_ips: tuple[str, ...]

    @property
    def endpoint(self) -> str | None:
        return f"http://{self.public_ips[0]}" if self.public_ips else None


def up(
    spec: DeploymentSpec,
    cloud: Cloud,
    waiting: Waiting = Waiting(),
    on_step: Step = _quiet_step,
    on_progress: ProgressCallback = _quiet_progress,
) -> UpResult:
    if not spec.image_uri:
        raise InvalidDeploymentConfig(
            "no image to deploy: pass --image-uri, or build and push one with the `image` command first")
    n, tags = spec.names, spec.tags
    on_step(f"AWS account {cloud.account.account_id()}, region {spec.region}")
    placement = cloud.network.default_placement()
    on_step(f"default VPC {placement.vpc_id}, {len(placement.subnet_ids)} public subnet(s)")

    created: list[str] = []

    def note(kind: str, name: str, was_created: bool) -> None:
        on_step(f"{kind} {name}: {'created' if was_created else 'already there'}")
        if was_created:
            created.append(f"{kind} {name}")

    ensured = cloud.log_groups.ensure(n.log_group, spec.log_retention_days, tags)
    note("log group", n.log_group, ensured.created)
    execution_role = cloud.roles.ensure_execution_role(n.execution_role, n.log_group, spec.image_uri, tags)
    note("IAM role", n.execution_role, execution_role.created)
    task_role_arn, new_role = None, execution_role.created
    if spec.s3_model:
        task_role = cloud.roles.ensure_task_role(n.task_role, spec.s3_model, tags)
        note("IAM role", n.task_role, task_role.created)
        task_role_arn, new_role = task_role.id, new_role or task_role.created
    group = cloud.network.ensure_security_group(n.security_group, placement.vpc_id, CONTAINER_PORT, tags)
    note("security group", f"{n.security_group} ({group.id})", group.created)
    note("cluster", n.cluster, cloud.deployer.ensure_cluster(n.cluster, tags).created)
    revision = cloud.deployer.register_task_definition(spec.task_definition(execution_role.id, task_role_arn))
    note("task definition", f"{n.family}:{revision.revision}", revision.created)
    if new_role and waiting.iam_propagation:  # else the first task may fail to assume it
        on_step(f"waiting {waiting.iam_propagation:.0f} s for the new IAM role to propagate")
        waiting.sleep(waiting.iam_propagation)
    change = cloud.deployer.ensure_service(ServiceSpec(
        cluster=n.cluster, name=n.service, task_definition_arn=revision.arn, desired_count=spec.desired_count,
        subnet_ids=placement.subnet_ids, security_group_ids=(group.id,), tags=tags,
    ))
    if change == "unchanged" and _needs_restart(cloud.deployer, n, revision.arn):
        cloud.deployer.force_new_deployment(n.cluster, n.service)
        change = "restarted"
    on_step(f"service {n.service}: {change}")
    if change == "created":
        created.append(f"service {n.service}")
    state = wait_until_stable(cloud.deployer, n, revision.arn, waiting, on_progress)
    return UpResult(revision, change, tuple(created), state, public_ips(cloud, n))


def _needs_restart(deployer: Deployer, names: DeploymentNames, target: str) -> bool:
    """A failed rollout of unchanged settings (its cause fixed since, e.g. the image pushed or the
    model uploaded) is only retried by a forced new deployment. One still in progress is left to
    finish: restarting it would throw its progress away, and a slow rollout would never end."""
    state = deployer.service(names.cluster, names.service)
    return state is not None and state.task_definition == target and state.rollout_state == "FAILED"


def wait_until_stable(
    deployer: Deployer, names: DeploymentNames, target: str, waiting: Waiting, on_progress: ProgressCallback
) -> ServiceState:
    """Poll until the service runs ``target`` with every task healthy; explain a failure or timeout."""
    start = waiting.clock()
    while True:
        state = deployer.service(names.cluster, names.service)
        if state is None:
            raise DeploymentError(f"service {names.service} disappeared while waiting for it")
        elapsed = waiting.clock() - start
        on_progress("stable", {"elapsed": elapsed, "timeout": waiting.timeout, "running": state.running,
                               "desired": state.desired, "pending": state.pending})
        if state.stable_on(target):
            return state
        if state.failed_for(target):
            raise ServiceUnhealthy(explain(deployer, names, state, "never became healthy"))
        if elapsed >= waiting.timeout:
            raise DeploymentTimeout(explain(deployer, names, state, f"was not stable after {waiting.timeout:.0f} s"))
        waiting.sleep(waiting.poll)


def explain(deployer: Deployer, names: DeploymentNames, state: ServiceState, what: str) -> str:
    """The service's recent events and its stopped tasks' reasons: what a person needs to fix it."""
    lines = [f"service {names.service} {what}: {state.running}/{state.desired} running, "
             f"{state.pending} pending, rollout {state.rollout_state or 'unknown'}"
             + (f" ({state.rollout_reason})" if state.rollout_reason else "")]
    if state.events:
        lines.append("recent service events:")
        lines += [f"  - {event}" for event in state.events[:5]]
    stopped = deployer.tasks(names.cluster, names.service, stopped=True)
    if stopped:
        lines.append("stopped tasks:")
        for task in stopped[:5]:
            reasons = "; ".join(task.container_reasons)
            reason = task.stopped_reason or "no reason given"
            lines.append(f"  - task {task.id}: {reason}" + (f" ({reasons})" if reasons else ""))
    if not state.events and not stopped:
        lines.append("AWS reported no service events and no stopped tasks yet.")
    lines.append("Resources were left in place for inspection: `logs` shows the container's output, "
                 "`down` removes everything `up` created.")
    return "\n".join(lines)


def public_ips(cloud: Cloud, names: DeploymentNames) -> tuple[str, ...]:
    """Public IPs of the running tasks, through each task's network interface."""
    ips = []
    for task in cloud.deployer.tasks(names.cluster, names.service):
        if task.network_interface_id:
            ip = cloud.network.public_ip(task.network_interface_id)
            if ip:
                ips.append(ip)
    return tuple(ips)


# -- status ---------------------------------------------------------------------------------------
def status(names: DeploymentNames, region: str, cloud: Cloud, probe: EndpointProbe | None = None) -> DeploymentStatus:
    service = cloud.deployer.service(names.cluster, names.service)
    if service is None or service.status == "INACTIVE":
        return DeploymentStatus(names, region, service, health="not deployed")
    tasks = []
    for task in cloud.deployer.tasks(names.cluster, names.service):
        ip = cloud.network.public_ip(task.network_interface_id) if task.network_interface_id else None
        tasks.append(replace(task, public_ip=ip) if ip else task)
    image = cloud.deployer.task_definition(service.task_definition).image_uri if service.task_definition else ""
    endpoint = next((f"http://{t.public_ip}" for t in tasks if t.public_ip), None)
    return DeploymentStatus(names, region, service, tuple(tasks), image, endpoint, _health(tasks, endpoint, probe))


def _health(tasks: Sequence[TaskState], endpoint: str | None, probe: EndpointProbe | None) -> str:
    if not tasks:
        return "no running task yet"
    if endpoint and probe:
        reply = probe.get(f"{endpoint}/readyz", timeout=5)
        if reply.status == 200:
            return f"ready (GET /readyz 200 in {reply.seconds * 1000:.0f} ms)"
        return f"not ready (GET /readyz: {reply.status or reply.error})"
    states = sorted({t.health for t in tasks})
    return "container health " + ", ".join(states) + ("" if endpoint else "; no public IP yet")


# -- logs -----------------------------------------------------------------------------------------
def read_logs(
    reader: LogReader,
    names: DeploymentNames,
    since_ms: int,
    on_event: Callable[[LogEvent], None],
    follow: bool = False,
    limit: int = 200,
    waiting: Waiting = Waiting(poll=2.0),
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Print the latest events since ``since_ms``; with ``follow``, keep polling for new ones."""
    if not reader.exists(names.log_group):
        raise DeploymentError(f"no log group {names.log_group}: nothing is deployed under prefix "
                              f"{names.prefix!r} in this region (run `up` first)")
    start, seen, count = since_ms, set(), 0
    while True:
        for event in reader.events(names.log_group, start, limit):
            key = (event.timestamp_ms, event.stream, event.event_id or event.message)
            if key in seen:
                continue
            seen.add(key)
            on_event(event)
            count += 1
            start = max(start, event.timestamp_ms)
        # events at ``start`` come back next time (startTime is inclusive): remember only those
        seen = {k for k in seen if k[0] >= start}
        if not follow or should_stop():
            return count
        waiting.sleep(waiting.poll)


# -- down -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RepositoryRemoval:
    """`down --delete-repository [NAME]`: the named repository, else those tagged as this
    deployment's and the one its newest image is in; each deleted only if its tags say it is ours."""

    repositories: RepositoryRemover
    region: str  # the repositories' client's region: an image in another region is not looked up here
    name: str | None = None


@dataclass(frozen=True)
class DownReport:
    removed: tuple[str, ...]
    remaining: tuple[Resource, ...]
    problems: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # asked for, but not this deployment's: left alone, with the reason

    @property
    def clean(self) -> bool:
        return not self.remaining and not self.problems


def down(
    names: DeploymentNames,
    cloud: Cloud,
    waiting: Waiting = Waiting(),
    on_step: Step = _quiet_step,
    on_progress: ProgressCallback = _quiet_progress,
    repository: RepositoryRemoval | None = None,
) -> DownReport:
    """Delete, in reverse order, everything tagged with this deployment; keep going past failures."""
    tags, deployer = names.tags, cloud.deployer
    removed: list[str] = []
    problems: list[str] = []
    kept: list[str] = []

    def attempt(what: str, action: Callable[[], object]) -> None:
        try:
            if action() is not False:
                removed.append(what)
                on_step(f"deleted {what}")
            else:
                on_step(f"{what}: already gone")
        except DeploymentError as exc:
            problems.append(f"{what}: {exc}")
            on_step(f"could not delete {what}: {exc}")

    account = cloud.account.account_id()  # fail early and clearly without credentials
    clusters = deployer.find_clusters(tags)
    for cluster in clusters:
        for service in deployer.find_services(cluster, tags):
            attempt(f"service {service}", partial(deployer.delete_service, cluster, service))
            try:
                wait_until_inactive(deployer, cluster, service, waiting, on_progress)
            except DeploymentError as exc:
                problems.append(f"service {service}: {exc}")
    revisions = deployer.find_task_definitions(names.family, tags)
    deployed_image = _deployed_image(revisions)
    for revision in revisions:
        attempt(f"task definition {revision.arn.rsplit('/', 1)[-1]}",
                partial(deployer.deregister_task_definition, revision.arn))
    for cluster in clusters:
        attempt(f"cluster {cluster}", partial(deployer.delete_cluster, cluster))
    for group_id, group_name in cloud.network.find_security_groups(tags):
        attempt(f"security group {group_name} ({group_id})",
                partial(delete_security_group, cloud.network, group_id, waiting, on_progress))
    for group in cloud.log_groups.find(f"/ecs/{names.prefix}-", tags):
        attempt(f"log group {group}", partial(cloud.log_groups.delete, group))
    for role in cloud.roles.find(tags):
        attempt(f"IAM role {role}", partial(cloud.roles.delete, role))
    extras: list[tuple[RepositoryRemover, str]] = []
    if repository is not None:
        remover = repository.repositories
        try:
            own = _own_repositories(names, repository, deployed_image, account, kept, on_step)
        except DeploymentError as exc:  # e.g. no permission to read the repositories' tags
            own = []
            problems.append(f"ECR repositories: {exc}")
        for name in own:
            extras.append((remover, name))
            attempt(f"{remover.kind} {name}", partial(remover.remove, name))
    return DownReport(tuple(removed), tuple(leftovers(names, cloud, extras)), tuple(problems), tuple(kept))


def _deployed_image(revisions: Sequence[TaskDefinitionRef]) -> EcrImage | None:
    """The ECR image the newest revision ran, for --delete-repository."""
    newest = max(revisions, key=lambda r: r.revision, default=None)
    return EcrImage.parse(newest.image_uri) if newest else None


def _own_repositories(
    names: DeploymentNames, removal: RepositoryRemoval, deployed: EcrImage | None, account: str,
    kept: list[str], on_step: Step,
) -> list[str]:
    """The repositories to delete: the named one, else those tagged as the deployment's plus the
    deployed image's when it is in this account and region (a same-named repository elsewhere is
    another one); of these, only those whose tags name the deployment. The rest go to ``kept``."""
    remover = removal.repositories

    def keep(name: str, reason: str) -> None:
        kept.append(f"{remover.kind} {name}: {reason}; left in place")
        on_step(f"kept {kept[-1]}")

    candidates = [removal.name] if removal.name else remover.find(names.tags)
    if not removal.name and deployed is not None and deployed.repository not in candidates:
        if (deployed.account, deployed.region) == (account, removal.region):
            candidates.append(deployed.repository)
        else:
            keep(deployed.repository, f"in account {deployed.account}, region {deployed.region}, not this one "
                                      f"({account}, {removal.region}); `down --region {deployed.region} "
                                      "--delete-repository` removes it there if it is this deployment's")
    if not candidates:
        on_step(f"no ECR repository tagged for deployment {names.prefix!r} in {removal.region}")
    own = []
    for name in candidates:
        tags = remover.tags(name)
        if tags is None and removal.name:  # typed by the user: a typo must not read as a deletion
            raise DeploymentError(f"no {remover.kind} named {name!r} in {removal.region}: nothing deleted "
                                  "(it may never have existed, or an earlier `down` deleted it)")
        if tags is None:
            on_step(f"{remover.kind} {name}: already gone")
        elif carries(tags, names.tags):
            own.append(name)
        else:
            keep(name, f"not created by this tool for deployment {names.prefix!r} (its tags differ)")
    return own


def wait_until_inactive(
    deployer: Deployer, cluster: str, service: str, waiting: Waiting, on_progress: ProgressCallback
) -> None:
    start = waiting.clock()
    while True:
        state = deployer.service(cluster, service)
        elapsed = waiting.clock() - start
        on_progress("inactive", {"elapsed": elapsed, "timeout": waiting.timeout,
                                 "running": state.running if state else 0})
        if state is None or state.status == "INACTIVE":
            return
        if elapsed >= waiting.timeout:
            raise DeploymentTimeout(f"service {service} still {state.status} after {waiting.timeout:.0f} s; "
                                    "run `down` again later")
        waiting.sleep(waiting.poll)


def delete_security_group(network: Network, group_id: str, waiting: Waiting, on_progress: ProgressCallback) -> bool:
    """Retry while the stopped tasks' network interfaces are released (a minute or two on AWS)."""
    start = waiting.clock()
    while True:
        try:
            return network.delete_security_group(group_id)
        except ResourceInUse:
            elapsed = waiting.clock() - start
            on_progress("security group", {"elapsed": elapsed, "timeout": waiting.timeout})
            if elapsed >= waiting.timeout:
                raise
            waiting.sleep(waiting.poll)


def leftovers(
    names: DeploymentNames, cloud: Cloud, extras: Sequence[tuple[RepositoryRemover, str]] = ()
) -> list[Resource]:
    """Everything of this deployment that still exists, inactive task definitions included."""
    tags, deployer = names.tags, cloud.deployer
    found: list[Resource] = []
    for cluster in deployer.find_clusters(tags):
        found.append(Resource("cluster", cluster))
        found += [Resource("service", s) for s in deployer.find_services(cluster, tags)]
    found += [Resource("task definition", r.arn.rsplit("/", 1)[-1])
              for r in deployer.find_task_definitions(names.family, tags)]
    found += [Resource("security group", f"{name} ({gid})") for gid, name in cloud.network.find_security_groups(tags)]
    found += [Resource("log group", g) for g in cloud.log_groups.find(f"/ecs/{names.prefix}-", tags)]
    found += [Resource("IAM role", r) for r in cloud.roles.find(tags)]
    found += [Resource(remover.kind, name) for remover, name in extras if remover.tags(name) is not None]
    return found
