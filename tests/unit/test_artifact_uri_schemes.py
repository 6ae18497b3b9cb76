"""Artifact URIs that look like a URI but are not ``s3://bucket/...`` (or ``file://``) are refused,
never published to or read from a local folder named after them; ``~`` means home everywhere."""

from __future__ import annotations


import pytest

from eurosat_service.adapters.artifact_uri import open_artifact_store, resolve_model_file
from eurosat_service.adapters.local_artifact_store import LocalArtifactStore
from eurosat_service.domain.errors import ArtifactNotFound, StoreAccessError

MISTYPED = ["s3:/qa/p", "S3://qa/p", "gs://qa-bucket/p", "file://s3:/qa/p", "https://example.com/p"]


def no_s3():
    pytest.fail("no S3 call expected")


@pytest.mark.parametrize("uri", MISTYPED)
def test_a_mistyped_store_uri_is_refused_before_publishing(uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreAccessError, match=f"^unsupported artifact URI {uri!r}; expected .*s3://bucket/prefix"):
        open_artifact_store(uri, no_s3)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("uri", MISTYPED)
def test_a_mistyped_model_uri_is_refused(uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArtifactNotFound, match=f"^unsupported model URI {uri!r}"):
        resolve_model_file(uri, tmp_path / "cache", no_s3)


@pytest.mark.parametrize("uri", ["~/store", "file://~/store"])
def test_a_store_under_home_is_expanded_as_evaluate_expands_it(uri, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    store = open_artifact_store(uri, no_s3)
    assert isinstance(store, LocalArtifactStore) and store.root == tmp_path / "home" / "store"


@pytest.mark.parametrize("uri", ["store", "./a/b", "/abs/store", "file:///abs/store"])
def test_plain_paths_are_still_local_stores(uri):
    assert isinstance(open_artifact_store(uri, no_s3), LocalArtifactStore)
