"""Deletes the ECR repository the image was pushed to (`down --delete-repository`)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from eurosat_service.adapters.aws_errors import error_code, translates_aws_errors


@translates_aws_errors
class EcrRepositoryRemover:
    kind = "ECR repository"

    def __init__(self, client: Any) -> None:
        self.client = client

    def exists(self, name: str) -> bool:
        try:
            self.client.describe_repositories(repositoryNames=[name])
            return True
        except ClientError as exc:
            if error_code(exc) == "RepositoryNotFoundException":
                return False
            raise

    def remove(self, name: str) -> bool:
        """With its images (``force``): the images are only useful to this deployment."""
        try:
            self.client.delete_repository(repositoryName=name, force=True)
            return True
        except ClientError as exc:
            if error_code(exc) == "RepositoryNotFoundException":
                return False
            raise
