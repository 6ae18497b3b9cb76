"""The task role `up` gives the API lets it read its S3 model and nothing else: the API's own
artifact store resolves each form of model URI against a moto server, every S3 call it makes is
recorded, and each must be allowed by the role's policy (evaluated here the way IAM matches
resources and ``s3:prefix``), while the store's other objects stay out of reach."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from eurosat_service.adapters.artifact_uri import resolve_model_file
from eurosat_service.adapters.iam_task_role import model_read_policy
from eurosat_service.adapters.s3_artifact_store import S3ArtifactStore
from eurosat_service.domain.errors import ArtifactNotFound
from eurosat_service.domain.model_uri import S3Model

ACTIONS = {"HeadObject": "s3:GetObject", "GetObject": "s3:GetObject",
           "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket"}


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def allows(policy: dict, operation: str, params: dict) -> bool:
    """IAM's answer for one S3 call under ``policy`` (Allow statements, ``StringEquals`` conditions)."""
    action = ACTIONS[operation]  # a KeyError: the API made a call nobody planned a permission for
    if action == "s3:GetObject":
        resource, context = f"arn:aws:s3:::{params['Bucket']}/{params['Key']}", {}
    else:
        resource, context = f"arn:aws:s3:::{params['Bucket']}", {"s3:prefix": params.get("Prefix", "")}
    for statement in policy["Statement"]:
        if action not in _listed(statement["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in _listed(statement["Resource"])):
            continue
        condition = statement.get("Condition", {}).get("StringEquals", {})
        if all(context.get(key) in _listed(wanted) for key, wanted in condition.items()):
            return True
    return False


@dataclass
class RecordedStore:
    bucket: str
    client: Any
    calls: list[tuple[str, dict]] = field(default_factory=list)  # (operation, parameters) of each S3 call


@pytest.fixture
def store(moto, prefix, tmp_path) -> RecordedStore:
    """A store at s3://<bucket>/models/eurosat with versions v1 and v2 (LATEST -> v2), each with a
    model and a report, plus an unrelated object; S3 calls are recorded in ``store.calls``."""
    client = moto.client("s3")
    bucket = f"{prefix}-models"
    client.create_bucket(Bucket=bucket)
    published = S3ArtifactStore(client, bucket, "models/eurosat", show_progress=False)
    for version in ("v1", "v2"):
        files = {}
        for name in ("model.pt", "report.json"):
            files[name] = tmp_path / version / name
            files[name].parent.mkdir(exist_ok=True)
            files[name].write_bytes(f"{version} {name}".encode())
        published.publish(version, files)
    client.put_object(Bucket=bucket, Key="private/secrets.txt", Body=b"not the API's")
    recorded = RecordedStore(bucket, client)
    client.meta.events.register("provide-client-params.s3",
                                lambda params, model, **_: recorded.calls.append((model.name, dict(params))))
    return recorded


def resolve(store: RecordedStore, uri: str, cache: Path) -> tuple[Path, dict]:
    """The API's model resolution, and the policy `up` would give its task role for ``uri``."""
    store.calls.clear()
    path = resolve_model_file(uri, cache, s3_client=lambda: store.client)
    return path, model_read_policy(S3Model.parse(uri))


def test_a_version_uri_reads_exactly_its_model_object(store, tmp_path):
    uri = f"s3://{store.bucket}/models/eurosat/v1/model.pt"
    path, policy = resolve(store, uri, tmp_path / "cache")
    assert path.read_bytes() == b"v1 model.pt"
    assert {op for op, _ in store.calls} >= {"HeadObject", "GetObject"}
    assert all(allows(policy, op, params) for op, params in store.calls), store.calls
    for other in ("models/eurosat/v2/model.pt", "models/eurosat/LATEST", "models/eurosat/v1/report.json",
                  "private/secrets.txt"):
        assert not allows(policy, "GetObject", {"Bucket": store.bucket, "Key": other}), other


def test_a_store_uri_reads_latest_and_the_model_it_names(store, tmp_path):
    path, policy = resolve(store, f"s3://{store.bucket}/models/eurosat", tmp_path / "cache")
    assert path.read_bytes() == b"v2 model.pt"
    assert ("GetObject", {"Bucket": store.bucket, "Key": "models/eurosat/LATEST"}) in store.calls
    assert all(allows(policy, op, params) for op, params in store.calls), store.calls
    for other in ("models/eurosat/v2/report.json", "models/other/LATEST", "private/secrets.txt"):
        assert not allows(policy, "GetObject", {"Bucket": store.bucket, "Key": other}), other
    assert not allows(policy, "ListObjectsV2", {"Bucket": store.bucket, "Prefix": "private"})


def test_a_missing_version_is_a_clear_not_found_with_the_role_too(store, tmp_path):
    """The store lists its prefix after a 404, to tell a missing object from a missing bucket."""
    uri = f"s3://{store.bucket}/models/eurosat/v9/model.pt"
    with pytest.raises(ArtifactNotFound, match="v9/model.pt does not exist"):
        resolve(store, uri, tmp_path / "cache")
    policy = model_read_policy(S3Model.parse(uri))
    assert "ListObjectsV2" in {op for op, _ in store.calls}
    assert all(allows(policy, op, params) for op, params in store.calls), store.calls
