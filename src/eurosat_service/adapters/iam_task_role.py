"""IAM roles for the tasks, least privilege.

- The *execution* role (used by ECS itself) may pull from the one ECR repository the image is in
  and write to the one log group; nothing else. Its trust is limited to ECS tasks of this
  account (``aws:SourceAccount``, against the confused deputy).
- The *task* role (what the app runs as) exists only when the model lives on S3: it may get the
  objects the API reads for that model URI (``S3Model.readable_keys``) and list its store's
  prefix, so a missing object is a clear 404 rather than an AccessDenied.

Roles live under the ``/eurosat-service/`` path and carry the deployment's tags, so `down` finds them.
IAM is global, so they also carry the region (``REGION_TAG``): `up` or `down` of the same prefix in
another region neither rewrites nor deletes the roles a deployment here runs with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from eurosat_service.adapters.aws_errors import error_code, translates_aws_errors
from eurosat_service.adapters.aws_tags import as_dict, key_value
from eurosat_service.domain.deployment import DEPLOYMENT_TAG_KEY, EcrImage, Ensured, carries
from eurosat_service.domain.errors import DeploymentError
from eurosat_service.domain.model_uri import S3Model
from eurosat_service.domain.ports import CloudAccount

PATH = "/eurosat-service/"
POLICY_NAME = "least-privilege"
REGION_TAG = "eurosat-service:region"


def trust_policy(account: str) -> dict:
    """ECS tasks of this account only (``aws:SourceAccount``, against the confused deputy)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
    }]}


def execution_policy(account: str, region: str, log_group: str, image_uri: str) -> dict:
    statements = [{
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": f"arn:aws:logs:{region}:{account}:log-group:{log_group}:*",
    }]
    image = EcrImage.parse(image_uri)
    if image:  # images from other registries need no AWS permission to pull
        statements += [
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {"Sid": "PullOwnImage", "Effect": "Allow",
             "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
             "Resource": f"arn:aws:ecr:{image.region}:{image.account}:repository/{image.repository}"},
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def model_read_policy(model: S3Model) -> dict:
    """GetObject on exactly the keys the API reads; ListBucket only for the store's own prefix,
    which the store lists (``Prefix=<prefix>``) to tell a missing object from a missing bucket."""
    listing = {"Sid": "ListModelStore", "Effect": "Allow", "Action": "s3:ListBucket",
               "Resource": f"arn:aws:s3:::{model.bucket}"}
    if model.prefix:
        listing["Condition"] = {"StringEquals": {"s3:prefix": [model.prefix]}}
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadModel", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": [f"arn:aws:s3:::{model.bucket}/{key}" for key in model.readable_keys]},
        listing,
    ]}


@translates_aws_errors
class IamTaskRoles:
    def __init__(self, client: Any, account: CloudAccount, region: str) -> None:
        self.client = client
        self.account = account
        self.region = region

    def ensure_execution_role(self, name: str, log_group: str, image_uri: str, tags: Mapping[str, str]) -> Ensured:
        account = self.account.account_id()
        return self._ensure(name, "ECS task execution: pull the eurosat-service image, write its logs",
                            execution_policy(account, self.region, log_group, image_uri), tags)

    def ensure_task_role(self, name: str, model: S3Model, tags: Mapping[str, str]) -> Ensured:
        return self._ensure(name, "eurosat-service API: read its model from S3", model_read_policy(model), tags)

    def find(self, tags: Mapping[str, str]) -> list[str]:
        found, wanted = [], self._regional(tags)
        for page in self.client.get_paginator("list_roles").paginate(PathPrefix=PATH):
            found += [r["RoleName"] for r in page["Roles"] if carries(self._tags(r["RoleName"]), wanted)]
        return found

    def delete(self, name: str) -> bool:
        """Detach and delete its policies first: IAM refuses to delete a role that has any."""
        try:
            for page in self.client.get_paginator("list_role_policies").paginate(RoleName=name):
                for policy in page["PolicyNames"]:
                    self.client.delete_role_policy(RoleName=name, PolicyName=policy)
            for page in self.client.get_paginator("list_attached_role_policies").paginate(RoleName=name):
                for policy in page["AttachedPolicies"]:
                    self.client.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
            for profile in self.client.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]:
                self.client.remove_role_from_instance_profile(
                    RoleName=name, InstanceProfileName=profile["InstanceProfileName"])
            self.client.delete_role(RoleName=name)
            return True
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return False
            raise

    def _ensure(self, name: str, description: str, policy: dict, tags: Mapping[str, str]) -> Ensured:
        trust = trust_policy(self.account.account_id())
        role = self._get(name)
        created = role is None
        if role is None:
            role = self.client.create_role(
                RoleName=name, Path=PATH, Description=description,
                AssumeRolePolicyDocument=json.dumps(trust), Tags=key_value(self._regional(tags)),
            )["Role"]
        elif not carries(found := self._tags(name), self._regional(tags)):
            raise DeploymentError(_refusal(name, found, tags, self.region))
        elif _document(role.get("AssumeRolePolicyDocument")) != trust:
            self.client.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        if created or self._inline_policy(name) != policy:
            self.client.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
        return Ensured(role["Arn"], created)

    def _regional(self, tags: Mapping[str, str]) -> dict[str, str]:
        return {**tags, REGION_TAG: self.region}

    def _get(self, name: str) -> dict | None:
        try:
            return self.client.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise

    def _inline_policy(self, name: str) -> dict | None:
        try:
            return _document(self.client.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)["PolicyDocument"])
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise

    def _tags(self, name: str) -> dict[str, str]:
        return as_dict(self.client.list_role_tags(RoleName=name).get("Tags"))


def _refusal(name: str, found: Mapping[str, str], tags: Mapping[str, str], region: str) -> str:
    """Why an existing role is not this deployment's: another region's deployment of the same
    prefix (role names are global), one made before roles recorded their region, or not this
    tool's at all."""
    if not carries(found, tags):
        return f"IAM role {name} exists but was not created by this job (its tags differ); choose another --name-prefix"
    prefix = tags.get(DEPLOYMENT_TAG_KEY, "")
    if REGION_TAG not in found:
        return (f"IAM role {name} belongs to deployment {prefix!r} but records no region (made by an "
                "earlier version): if that deployment is in this region, tag the role with `aws iam "
                f"tag-role --role-name {name} --tags Key={REGION_TAG},Value={region}` and run again; "
                "otherwise choose another --name-prefix")
    return (f"IAM role {name} belongs to deployment {prefix!r} in region {found[REGION_TAG]} (IAM "
            "roles are global): choose another --name-prefix for this region")


def _document(value: Any) -> Any:
    """boto3 decodes policy documents to dicts; some endpoints return the JSON (URL-encoded) text."""
    if isinstance(value, str):
        return json.loads(unquote(value))
    return value
