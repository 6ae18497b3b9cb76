"""Empties and deletes the model bucket (`down --delete-bucket`), every object version included."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from eurosat_service.adapters.aws_errors import error_code, translates_aws_errors

MISSING = {"NoSuchBucket", "404", "NotFound"}


@translates_aws_errors
class S3BucketRemover:
    kind = "S3 bucket"

    def __init__(self, client: Any) -> None:
        self.client = client

    def exists(self, name: str) -> bool:
        try:
            self.client.head_bucket(Bucket=name)
            return True
        except ClientError as exc:
            if error_code(exc) in MISSING:
                return False
            raise

    def remove(self, name: str) -> bool:
        try:
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=name):
                keys = [{"Key": o["Key"], "VersionId": o["VersionId"]}
                        for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                for i in range(0, len(keys), 1000):
                    self.client.delete_objects(Bucket=name, Delete={"Objects": keys[i:i + 1000], "Quiet": True})
            self.client.delete_bucket(Bucket=name)
            return True
        except ClientError as exc:
            if error_code(exc) in MISSING:
                return False
            raise
