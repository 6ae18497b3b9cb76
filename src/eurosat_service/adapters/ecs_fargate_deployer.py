"""ECS on Fargate: the cluster, task definition revisions and the service, with boto3.

Idempotence: each revision carries a tag with the sha256 of the request that made it, so `up`
with unchanged settings registers nothing new, and a new image (or any setting) makes a new
revision and rolls the service to it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from eurosat_service.adapters.aws_errors import error_code, translates_aws_errors
from eurosat_service.adapters.aws_tags import as_dict, ecs_tags
from eurosat_service.domain.deployment import (
    Ensured,
    ServiceSpec,
    ServiceState,
    TaskDefinitionRef,
    TaskDefinitionSpec,
    TaskState,
    carries,
)
from eurosat_service.domain.errors import DeploymentError, ResourceInUse

log = logging.getLogger(__name__)

SPEC_TAG = "eurosat-service:spec-sha256"
STREAM_PREFIX = "api"
NOT_FOUND = {"ClusterNotFoundException", "ServiceNotFoundException"}
# how endpoints say they lack an operation; AccessDenied and the like are not among them
UNSUPPORTED = {"UnknownOperationException", "InvalidAction", "NotImplemented", "NotImplementedException",
               "UnsupportedOperation", "UnsupportedOperationException"}
# A brand-new account gets ECS's service-linked role on first use; it can lag a few seconds.
SERVICE_LINKED_ROLE_RETRIES = 6


def task_definition_request(spec: TaskDefinitionSpec) -> dict[str, Any]:
    container = {
        "name": spec.container,
        "image": spec.image_uri,
        "essential": True,
        "memory": spec.memory,  # container-level hard limit = the task's (moto's run_task needs one)
        "portMappings": [{"containerPort": spec.port, "hostPort": spec.port, "protocol": "tcp"}],
        "environment": [{"name": k, "value": v} for k, v in sorted(spec.environment.items())],
        "healthCheck": {"command": list(spec.health_check), "interval": 15, "timeout": 5, "retries": 3,
                        "startPeriod": 60},
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": spec.log_group, "awslogs-region": spec.region, "awslogs-stream-prefix": STREAM_PREFIX,
        }},
        # the image runs as a non-root user but listens on 80: allow that inside the task's own
        # network namespace (Fargate supports net.* sysctls on platform 1.4.0+)
        "systemControls": [{"namespace": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
    }
    request = {
        "family": spec.family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": str(spec.cpu),
        "memory": str(spec.memory),
        "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
        "executionRoleArn": spec.execution_role_arn,
        "containerDefinitions": [container],
    }
    if spec.task_role_arn:
        request["taskRoleArn"] = spec.task_role_arn
    return request


def fingerprint(request: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@translates_aws_errors
class EcsFargateDeployer:
    def __init__(self, client: Any, retry_delay: float = 10.0) -> None:
        self.client = client
        self.retry_delay = retry_delay
        self._inactive: set[str] = set()  # revisions found INACTIVE: only deleting is left to do
        self._can_delete = True  # False once the endpoint says it has no DeleteTaskDefinitions

    # -- up ---------------------------------------------------------------------------------------
    def ensure_cluster(self, name: str, tags: Mapping[str, str]) -> Ensured:
        cluster = self._cluster(name)
        if cluster is not None:
            if not carries(as_dict(cluster.get("tags")), tags):
                raise DeploymentError(f"ECS cluster {name} exists but was not created by this job "
                                      "(its tags differ); choose another --name-prefix")
            return Ensured(cluster["clusterArn"], False)
        arn = self.client.create_cluster(
            clusterName=name, tags=ecs_tags(tags),
            settings=[{"name": "containerInsights", "value": "disabled"}],  # Insights is billed per metric
        )["cluster"]["clusterArn"]
        return Ensured(arn, True)

    def register_task_definition(self, spec: TaskDefinitionSpec) -> TaskDefinitionRef:
        request = task_definition_request(spec)
        digest = fingerprint(request)
        latest = self._latest_revision(spec.family)
        if latest is not None:
            definition, tags = latest
            if tags.get(SPEC_TAG) == digest and carries(tags, spec.tags):
                return _ref(definition, created=False)
        definition = self.client.register_task_definition(
            **request, tags=ecs_tags({**spec.tags, SPEC_TAG: digest}))["taskDefinition"]
        return _ref(definition, created=True)

    def ensure_service(self, spec: ServiceSpec) -> str:
        current = self._service(spec.cluster, spec.name)
        network = {"awsvpcConfiguration": {"subnets": list(spec.subnet_ids),
                                           "securityGroups": list(spec.security_group_ids),
                                           "assignPublicIp": "ENABLED"}}
        deployment = {"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                      "maximumPercent": 200, "minimumHealthyPercent": 100}
        if current is not None and current["status"] == "DRAINING":
            raise DeploymentError(f"service {spec.name} is still being deleted by an earlier `down`; "
                                  "wait a minute and run `up` again")
        if current is not None and current["status"] == "ACTIVE":
            if not carries(as_dict(current.get("tags")), spec.tags):
                raise DeploymentError(f"ECS service {spec.name} exists but was not created by this job "
                                      "(its tags differ); choose another --name-prefix")
            if (current["taskDefinition"] == spec.task_definition_arn
                    and current["desiredCount"] == spec.desired_count
                    and _same_network(current, network)):
                return "unchanged"
            self.client.update_service(
                cluster=spec.cluster, service=spec.name, taskDefinition=spec.task_definition_arn,
                desiredCount=spec.desired_count, networkConfiguration=network, deploymentConfiguration=deployment,
            )
            return "updated"
        for attempt in range(SERVICE_LINKED_ROLE_RETRIES):
            try:
                self.client.create_service(
                    cluster=spec.cluster, serviceName=spec.name, taskDefinition=spec.task_definition_arn,
                    desiredCount=spec.desired_count, launchType="FARGATE", platformVersion="LATEST",
                    networkConfiguration=network, deploymentConfiguration=deployment,
                    schedulingStrategy="REPLICA", enableECSManagedTags=True, propagateTags="SERVICE",
                    enableExecuteCommand=False, tags=ecs_tags(spec.tags),
                )
                return "created"
            except ClientError as exc:
                if "service linked role" not in str(exc).lower() or attempt + 1 == SERVICE_LINKED_ROLE_RETRIES:
                    raise
                log.info("ECS service-linked role not ready yet; retrying in %.0f s", self.retry_delay)
                time.sleep(self.retry_delay)
        raise AssertionError("unreachable")

    def force_new_deployment(self, cluster: str, name: str) -> None:
        self.client.update_service(cluster=cluster, service=name, forceNewDeployment=True)

    # -- observe ----------------------------------------------------------------------------------
    def service(self, cluster: str, name: str) -> ServiceState | None:
        current = self._service(cluster, name)
        if current is None:
            return None
        deployments = current.get("deployments", [])
        primary = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
        return ServiceState(
            name=name,
            status=current["status"],
            desired=current.get("desiredCount", 0),
            running=current.get("runningCount", 0),
            pending=current.get("pendingCount", 0),
            task_definition=current.get("taskDefinition") or primary.get("taskDefinition", ""),
            rollout_state=primary.get("rolloutState", "") or "",
            rollout_reason=primary.get("rolloutStateReason", "") or "",
            deployments=len(deployments),
            events=tuple(e["message"] for e in current.get("events", [])[:10]),
        )

    def tasks(self, cluster: str, service: str, stopped: bool = False) -> list[TaskState]:
        try:
            arns = self.client.list_tasks(cluster=cluster, serviceName=service,
                                          desiredStatus="STOPPED" if stopped else "RUNNING")["taskArns"]
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return []
            raise
        if not arns:
            return []
        described = self.client.describe_tasks(cluster=cluster, tasks=arns[:100])["tasks"]
        return [_task_state(t) for t in described]

    def task_definition(self, arn: str) -> TaskDefinitionRef:
        return _ref(self.client.describe_task_definition(taskDefinition=arn)["taskDefinition"], created=False)

    # -- find (for down) --------------------------------------------------------------------------
    def find_clusters(self, tags: Mapping[str, str]) -> list[str]:
        arns = [a for page in self.client.get_paginator("list_clusters").paginate() for a in page["clusterArns"]]
        found = []
        for i in range(0, len(arns), 100):
            for cluster in self.client.describe_clusters(clusters=arns[i:i + 100], include=["TAGS"])["clusters"]:
                if cluster["status"] == "ACTIVE" and carries(as_dict(cluster.get("tags")), tags):
                    found.append(cluster["clusterName"])
        return found

    def find_services(self, cluster: str, tags: Mapping[str, str]) -> list[str]:
        try:
            arns = [a for page in self.client.get_paginator("list_services").paginate(cluster=cluster)
                    for a in page["serviceArns"]]
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return []
            raise
        found = []
        for i in range(0, len(arns), 10):
            described = self.client.describe_services(cluster=cluster, services=arns[i:i + 10], include=["TAGS"])
            found += [s["serviceName"] for s in described["services"]
                      if s["status"] != "INACTIVE" and carries(as_dict(s.get("tags")), tags)]
        return found

    def find_task_definitions(self, family: str, tags: Mapping[str, str]) -> list[TaskDefinitionRef]:
        """Active and inactive revisions: `down` deregisters (-> INACTIVE), then deletes, so one
        interrupted in between, or denied the delete, leaves inactive revisions only this finds.
        Where deleting is not supported at all, inactive revisions are not reported: none can go."""
        found = []
        for status in ("ACTIVE", "INACTIVE") if self._can_delete else ("ACTIVE",):
            pages = self.client.get_paginator("list_task_definitions").paginate(familyPrefix=family, status=status)
            for arn in (a for page in pages for a in page["taskDefinitionArns"]):
                try:
                    described = self.client.describe_task_definition(taskDefinition=arn, include=["TAGS"])
                except ClientError as exc:
                    if _is_missing(exc):  # deleted since it was listed
                        continue
                    raise
                definition = described["taskDefinition"]
                if definition["family"] == family and carries(as_dict(described.get("tags")), tags):
                    found.append(_ref(definition, created=False))
                    if definition.get("status") == "INACTIVE":
                        self._inactive.add(definition["taskDefinitionArn"])
        return found

    # -- down -------------------------------------------------------------------------------------
    def delete_service(self, cluster: str, name: str) -> bool:
        current = self._service(cluster, name)
        if current is None or current["status"] == "INACTIVE":
            return False
        if current["status"] == "DRAINING":
            return True  # an earlier `down` already deleted it; the caller waits for INACTIVE
        if current.get("desiredCount", 0):
            self.client.update_service(cluster=cluster, service=name, desiredCount=0)
        self.client.delete_service(cluster=cluster, service=name, force=True)
        return True

    def deregister_task_definition(self, arn: str) -> bool:
        """Deregister it (unless found INACTIVE already), then delete it so nothing of it stays
        listed; False when there was nothing left to do. Only an endpoint without
        DeleteTaskDefinitions (older LocalStack) may leave it inactive: a refusal (AccessDenied) is
        raised, and the revision, now inactive, is still found by `find_task_definitions`."""
        was_active = arn not in self._inactive
        if was_active:
            try:
                self.client.deregister_task_definition(taskDefinition=arn)
            except ClientError as exc:
                if _is_missing(exc):
                    return False
                raise
            self._inactive.add(arn)
        if not self._can_delete:
            return was_active
        try:
            response = self.client.delete_task_definitions(taskDefinitions=[arn])
        except ClientError as exc:
            if not _unsupported(exc):
                raise
            self._can_delete = False
            log.info("this ECS endpoint cannot delete task definitions (%s): left %s inactive", error_code(exc), arn)
            return was_active
        for failure in response.get("failures", []):  # DeleteTaskDefinitions reports these, it does not raise
            reason = failure.get("reason") or "no reason given"
            if "does not exist" not in reason:  # else deleted since it was found
                raise DeploymentError(f"ECS did not delete the inactive revision: {reason}")
        self._inactive.discard(arn)
        return True

    def delete_cluster(self, name: str) -> bool:
        try:
            self.client.delete_cluster(cluster=name)
            return True
        except ClientError as exc:
            code = error_code(exc)
            if code == "ClusterNotFoundException":
                return False
            if code in ("ClusterContainsServicesException", "ClusterContainsTasksException"):
                raise ResourceInUse(f"cluster {name} still has services or tasks") from exc
            raise

    # -- helpers ----------------------------------------------------------------------------------
    def _cluster(self, name: str) -> dict | None:
        clusters = self.client.describe_clusters(clusters=[name], include=["TAGS"])["clusters"]
        return next((c for c in clusters if c["status"] == "ACTIVE"), None)

    def _service(self, cluster: str, name: str) -> dict | None:
        try:
            services = self.client.describe_services(cluster=cluster, services=[name], include=["TAGS"])["services"]
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            raise
        return services[0] if services else None

    def _latest_revision(self, family: str) -> tuple[dict, dict[str, str]] | None:
        try:
            described = self.client.describe_task_definition(taskDefinition=family, include=["TAGS"])
        except ClientError as exc:
            if error_code(exc) == "ClientException":  # "Unable to describe task definition": none yet
                return None
            raise
        if described["taskDefinition"].get("status") != "ACTIVE":
            return None
        return described["taskDefinition"], as_dict(described.get("tags"))


def _ref(definition: Mapping[str, Any], created: bool) -> TaskDefinitionRef:
    container = (definition.get("containerDefinitions") or [{}])[0]
    return TaskDefinitionRef(
        arn=definition["taskDefinitionArn"], revision=definition["revision"], created=created,
        image_uri=container.get("image", ""),
        environment={e["name"]: e["value"] for e in container.get("environment", [])},
    )


def _is_missing(exc: ClientError) -> bool:
    """ECS's ClientException for a revision that does not exist (any more)."""
    message = exc.response.get("Error", {}).get("Message", "").lower()
    return error_code(exc) == "ClientException" and ("unable to describe" in message or "does not exist" in message)


def _unsupported(exc: ClientError) -> bool:
    """The endpoint lacks the operation (older LocalStack answers 501): not a refusal to fix."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(exc) in UNSUPPORTED or status == 501


def _same_network(service: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    current = (service.get("networkConfiguration") or {}).get("awsvpcConfiguration", {})
    target = wanted["awsvpcConfiguration"]
    return (sorted(current.get("subnets", [])) == sorted(target["subnets"])
            and sorted(current.get("securityGroups", [])) == sorted(target["securityGroups"])
            and current.get("assignPublicIp") == "ENABLED")


def _task_state(task: Mapping[str, Any]) -> TaskState:
    details = {}
    for attachment in task.get("attachments", []):
        if attachment.get("type") == "ElasticNetworkInterface":
            details = {d["name"]: d["value"] for d in attachment.get("details", [])}
    reasons = tuple(
        f"{c['name']}: " + (c.get("reason") or f"exit code {c.get('exitCode')}")
        for c in task.get("containers", []) if c.get("reason") or c.get("exitCode") not in (None, 0)
    )
    return TaskState(
        arn=task["taskArn"],
        last_status=task.get("lastStatus", ""),
        health=task.get("healthStatus", "UNKNOWN"),
        task_definition=task.get("taskDefinitionArn", ""),
        network_interface_id=details.get("networkInterfaceId"),
        private_ip=details.get("privateIPv4Address"),
        stopped_reason=task.get("stoppedReason", ""),
        container_reasons=reasons,
    )
