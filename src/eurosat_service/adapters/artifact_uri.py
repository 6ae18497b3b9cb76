"""Turns an artifact URI (a local folder or ``s3://bucket/prefix``) into an artifact store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from eurosat_service.adapters.local_artifact_store import LocalArtifactStore
from eurosat_service.domain.ports import ArtifactStore


def parse_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} has no bucket name; expected s3://bucket/prefix")
    return bucket, prefix.strip("/")


def open_artifact_store(uri: str, s3_client: Callable[[], Any]) -> ArtifactStore:
    if uri.startswith("s3://"):
        from eurosat_service.adapters.s3_artifact_store import S3ArtifactStore

        bucket, prefix = parse_s3_uri(uri)
        return S3ArtifactStore(s3_client(), bucket, prefix)
    return LocalArtifactStore(Path(uri))
