"""Every way S3 can refuse becomes one clear domain error (no botocore exception escapes).

A stand-in client raises the exact exceptions botocore and boto3 raise; the real round trips
against a moto server are in ``tests/integration/test_artifact_stores.py``.
"""

from __future__ import annotations

import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
)

from eurosat_service.adapters.artifact_uri import open_artifact_store
from eurosat_service.adapters.s3_artifact_store import S3ArtifactStore
from eurosat_service.domain.errors import ArtifactNotFound, StoreAccessError


def client_error(code: str, operation: str = "GetObject", message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message or code}}, operation)


class RaisingClient:
    """Raises ``errors[operation]`` for the named operations; lists an empty bucket otherwise."""

    def __init__(self, **errors: Exception) -> None:
        self.errors = errors

    def __getattr__(self, operation: str):
        def call(*args, **kwargs):
            if operation in self.errors:
                raise self.errors[operation]
            return {}
        return call


def store(**errors: Exception) -> S3ArtifactStore:
    return S3ArtifactStore(RaisingClient(**errors), "b", "models", show_progress=False)


@pytest.mark.parametrize("code", ["ExpiredToken", "RequestExpired", "InvalidAccessKeyId", "SignatureDoesNotMatch"])
def test_expired_or_invalid_credentials(code):
    with pytest.raises(StoreAccessError, match="credentials expired or invalid"):
        store(get_object=client_error(code)).latest_version()


@pytest.mark.parametrize("error", [NoCredentialsError(), PartialCredentialsError(provider="env", cred_var="x")])
def test_missing_credentials(error):
    with pytest.raises(StoreAccessError, match="no usable AWS credentials"):
        store(get_object=error).latest_version()


def test_missing_bucket():
    with pytest.raises(StoreAccessError, match="bucket b does not exist; create it or fix --artifact-uri"):
        store(get_object=client_error("NoSuchBucket")).latest_version()


def test_a_bare_404_on_head_is_told_apart_by_listing_the_bucket(tmp_path):
    with pytest.raises(StoreAccessError, match="bucket b does not exist"):
        store(head_object=client_error("404", "HeadObject"),
              list_objects_v2=client_error("NoSuchBucket", "ListObjectsV2")).fetch(tmp_path, "v1")
    with pytest.raises(ArtifactNotFound, match="s3://b/models/v1/model.pt does not exist"):
        store(head_object=client_error("404", "HeadObject")).fetch(tmp_path, "v1")


@pytest.mark.parametrize("status", ["400", "403"])
def test_expired_credentials_on_a_head_are_named_by_listing_the_bucket(status, tmp_path):
    """S3 answers a HEAD with a bare status (no error body): ExpiredToken arrives as "400"."""
    with pytest.raises(StoreAccessError, match="credentials expired or invalid \\(ExpiredToken"):
        store(head_object=client_error(status, "HeadObject", "Bad Request"),
              list_objects_v2=client_error("ExpiredToken", "ListObjectsV2")).fetch(tmp_path, "v1")


def test_a_403_on_head_with_a_working_listing_is_access_denied(tmp_path):
    with pytest.raises(StoreAccessError, match="access denied \\(HTTP 403\\)"):
        store(head_object=client_error("403", "HeadObject", "Forbidden")).fetch(tmp_path, "v1")


def test_the_write_probe_needs_put_object_but_tolerates_a_refused_delete(caplog):
    with pytest.raises(StoreAccessError, match="writing to s3://b/models .* failed: access denied \\(AccessDenied"):
        store(put_object=client_error("AccessDenied", "PutObject")).check_writable()
    store(delete_object=client_error("AccessDenied", "DeleteObject")).check_writable()
    assert "delete it by hand" in caplog.text


def test_access_denied():
    with pytest.raises(StoreAccessError, match="access denied"):
        store(get_object=client_error("AccessDenied")).latest_version()


def test_unreachable_endpoint():
    with pytest.raises(StoreAccessError, match="cannot reach S3"):
        store(get_object=EndpointConnectionError(endpoint_url="http://127.0.0.1:9")).latest_version()


def test_no_latest_pointer():
    with pytest.raises(ArtifactNotFound, match="no published model at s3://b/models"):
        store(get_object=client_error("NoSuchKey")).latest_version()


def test_errors_wrapped_by_the_transfer_manager_are_unwrapped(tmp_path):
    try:
        raise client_error("AccessDenied", "PutObject")
    except ClientError:
        try:
            raise S3UploadFailedError("Failed to upload model.pt to b/models/v1/model.pt")
        except S3UploadFailedError as exc:
            wrapped = exc
    (tmp_path / "model.pt").write_bytes(b"weights")
    with pytest.raises(StoreAccessError, match="upload to s3://b/models/v1/model.pt failed: access denied"):
        store(upload_file=wrapped).publish("v1", {"model.pt": tmp_path / "model.pt"})


def test_a_client_that_cannot_be_built_is_a_clear_error():
    def unknown_profile():
        raise ProfileNotFound(profile="nope")

    with pytest.raises(StoreAccessError, match="cannot open an S3 client for s3://b/m: .*nope"):
        open_artifact_store("s3://b/m", unknown_profile)


@pytest.mark.parametrize("version", ["..", "../../etc", "v1/../../x", ".hidden"])
def test_a_version_that_would_escape_the_cache_is_refused(version, tmp_path):
    with pytest.raises(ArtifactNotFound, match="unsafe version"):
        store().fetch(tmp_path, version)
