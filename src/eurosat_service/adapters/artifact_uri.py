"""Turns an artifact URI (a local folder or file, or ``s3://...``) into a store or a model file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from eurosat_service.adapters.local_artifact_store import LocalArtifactStore, verified_file
from eurosat_service.domain.errors import ArtifactNotFound, StoreAccessError
from eurosat_service.domain.model_uri import LATEST, MODEL_FILE, S3_FORMS, S3Model, check_task_model_uri
from eurosat_service.domain.ports import ArtifactStore

URI_FORMS = f"a store folder, a model.pt file, {S3_FORMS}"
STORE_FORMS = "a local folder (file:// optional) or s3://bucket/prefix"


def _is_uri_we_cannot_read(uri: str) -> bool:
    """True for ``gs://b/p``, ``S3://b/p``, ``s3:/b/p``...: taken as paths they would quietly
    become folders such as ``./s3:/b/p``. The same rule the deploy side applies (domain/model_uri)."""
    try:
        check_task_model_uri(uri)
    except ValueError:
        return True
    return False


def _local_path(uri: str) -> Path:
    # "~" expanded here too, so publishing to '~/store' (quoted) writes where evaluate and the API read
    return Path(uri.removeprefix("file://")).expanduser()


def parse_s3_model(uri: str) -> S3Model:
    try:
        model = S3Model.parse(uri)
    except ValueError as exc:
        raise ArtifactNotFound(str(exc)) from None
    assert model is not None  # callers pass s3:// URIs only
    return model


def open_artifact_store(uri: str, s3_client: Callable[[], Any]) -> ArtifactStore:
    if uri.startswith("s3://"):
        from eurosat_service.adapters.s3_artifact_store import open_s3_store

        model = parse_s3_model(uri)
        if model.version is not None:
            raise ArtifactNotFound(f"{uri!r} names one model file, not a store; publish to s3://bucket/prefix")
        return open_s3_store(s3_client, model.bucket, model.prefix)
    if _is_uri_we_cannot_read(uri):
        raise StoreAccessError(f"unsupported artifact URI {uri!r}; expected {STORE_FORMS}")
    return LocalArtifactStore(_local_path(uri))


def resolve_model_file(uri: str, cache_dir: Path | str, s3_client: Callable[[], Any]) -> Path:
    """A verified local ``model.pt`` for ``uri`` (see ``URI_FORMS``); S3 objects are downloaded
    into ``cache_dir`` once and re-verified on every use. ``s3_client`` is only called for S3."""
    if uri.startswith("s3://"):
        return _resolve_s3(uri, Path(cache_dir), s3_client)
    if _is_uri_we_cannot_read(uri):
        raise ArtifactNotFound(f"unsupported model URI {uri!r}; expected {URI_FORMS}")
    path = _local_path(uri)
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

    model = parse_s3_model(uri)
    store = open_s3_store(s3_client, model.bucket, model.prefix)
    return store.fetch(cache_dir / "s3" / model.bucket / model.prefix, model.version, model.name)
