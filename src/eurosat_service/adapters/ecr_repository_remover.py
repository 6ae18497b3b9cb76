"""ECR repositories for `down --delete-repository`: found and read by their tags, deleted by name.

The client's region is the only one looked at, so a same-named repository elsewhere is never
touched; the use case deletes a repository only when its tags name the deployment. A name ECR
would refuse is refused here too: moto answers "not found" for it, as if it had been deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from eurosat_service.adapters.aws_errors import error_code, translates_aws_errors
from eurosat_service.adapters.aws_tags import as_dict
from eurosat_service.domain.container_image import check_repository_name
from eurosat_service.domain.deployment import carries
from eurosat_service.domain.errors import BuildError, InvalidDeploymentConfig

MISSING = "RepositoryNotFoundException"


@translates_aws_errors
class EcrRepositoryRemover:
    kind = "ECR repository"

    def __init__(self, client: Any) -> None:
        self.client = client

    def find(self, tags: Mapping[str, str]) -> list[str]:
        found = []
        for page in self.client.get_paginator("describe_repositories").paginate():
            found += [r["repositoryName"] for r in page["repositories"]
                      if carries(self._tags(r["repositoryArn"]), tags)]
        return found

    def tags(self, name: str) -> dict[str, str] | None:
        _check_name(name)
        try:
            repository = self.client.describe_repositories(repositoryNames=[name])["repositories"][0]
        except ClientError as exc:
            if error_code(exc) == MISSING:
                return None
            raise
        return self._tags(repository["repositoryArn"])

    def remove(self, name: str) -> bool:
        """With its images (``force``): only called for a repository tagged as the deployment's."""
        _check_name(name)
        try:
            self.client.delete_repository(repositoryName=name, force=True)
            return True
        except ClientError as exc:
            if error_code(exc) == MISSING:
                return False
            raise

    def _tags(self, arn: str) -> dict[str, str]:
        return as_dict(self.client.list_tags_for_resource(resourceArn=arn).get("tags"))


def _check_name(name: str) -> None:
    try:
        check_repository_name(name)
    except BuildError:
        raise InvalidDeploymentConfig(
            f"{name!r} is not a valid ECR repository name (2-256 lowercase letters and digits, with single "
            "'.', '_', '-' or '/' between them): nothing deleted") from None
