"""Turns an artifact URI (a local folder or file, or ``s3://...``) into a store or a model file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from eurosat_service.adapters.local_artifact_store import LATEST, LocalArtifactStore, verified_file
from eurosat_service.domain.errors import ArtifactNotFound
from eurosat_service.domain.ports import ArtifactStore

MODEL_FILE = "model.pt"
URI_FORMS = ("a store folder, a model.pt file, s3://bucket/prefix (its latest version) "
             "or s3://bucket/prefix/<version>/model.pt")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ArtifactNotFound(f"{uri!r} has no bucket name; expected s3://bucket/prefix")
    return bucket, prefix.strip("/")


def open_artifact_store(uri: str, s3_client: Callable[[], Any]) -> ArtifactStore:
    if uri.startswith("s3://"):
        from eurosat_service.adapters.s3_artifact_store import open_s3_store

        return open_s3_store(s3_client, *parse_s3_uri(uri))
    return LocalArtifactStore(Path(uri.removeprefix("file://")))


def resolve_model_file(uri: str, cache_dir: Path | str, s3_client: Callable[[], Any]) -> Path:
    """A verified local ``model.pt`` for ``uri`` (see ``URI_FORMS``); S3 objects are downloaded
    into ``cache_dir`` once and re-verified on every use. ``s3_client`` is only called for S3."""
    if uri.startswith("s3://"):
        return _resolve_s3(uri, Path(cache_dir), s3_client)
    if "://" in uri.removeprefix("file://"):
        raise ArtifactNotFound(f"unsupported model URI {uri!r}; expected {URI_FORMS}")
    path = Path(uri.removeprefix("file://")).expanduser()
    if path.is_file():
        return verified_file(path)
    if path.is_dir():
        if (path / LATEST).is_file():
            return LocalArtifactStore(path).fetch(Path(cache_dir))
        if (path / MODEL_FILE).is_file():  # a version folder
            return verified_file(path / MODEL_FILE)
        raise ArtifactNotFound(f"{path} holds neither a {LATEST} pointer nor a {MODEL_FILE}; expected {URI_FORMS}")
    raise ArtifactNotFound(f"model URI {uri!r}: no such file or folder; expected {URI_FORMS}")


def _resolve_s3(uri: str, cache_dir: Path, s3_client: Callable[[], Any]) -> Path:
    from eurosat_service.adapters.s3_artifact_store import open_s3_store

    bucket, key = parse_s3_uri(uri)
    prefix, version, name = key, None, MODEL_FILE
    if key.endswith(".pt"):  # one object: <prefix>/<version>/<name>
        parts = key.split("/")
        if len(parts) < 2:
            raise ArtifactNotFound(f"{uri!r} names a file outside any version folder; expected {URI_FORMS}")
        prefix, version, name = "/".join(parts[:-2]), parts[-2], parts[-1]
    store = open_s3_store(s3_client, bucket, prefix)
    return store.fetch(cache_dir / "s3" / bucket / prefix, version, name)
