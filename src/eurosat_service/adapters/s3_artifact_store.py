"""Artifact store on S3 (boto3), with the local store's layout and guarantees.

Keys: ``<prefix>/<version>/<file>``, each object carrying its sha256 as metadata (``sha256``),
and ``<prefix>/LATEST`` holding the newest version. ``LATEST`` is written only after every file
of a version is uploaded, so a failed publish never points at a partial version. Downloads go
to a ``.part`` file, are hashed and compared with the metadata, and only then renamed into place.
Training probes the prefix first (``check_writable``): publishing needs s3:ListBucket and
s3:PutObject, and s3:DeleteObject lets the probe clean up after itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from tqdm import tqdm

from eurosat_service.adapters.aws_errors import DENIED, EXPIRED, REJECTED, error_code
from eurosat_service.adapters.sha256 import file_sha256
from eurosat_service.domain.errors import ArtifactIntegrityError, ArtifactNotFound, ModelLoadError, StoreAccessError
from eurosat_service.domain.model_uri import LATEST
from eurosat_service.domain.ports import PublishedArtifact

log = logging.getLogger(__name__)

SHA256_METADATA = "sha256"
NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
BARE_REFUSAL = {"400", "403"}  # a HEAD's answer has no body: expired credentials look like any 400
BAD_CREDENTIALS = EXPIRED | REJECTED  # the codes the deploy adapters know, shared
S3_DENIED = DENIED | {"AllAccessDisabled", "AccountProblem"}
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a version or file name becomes a local path


def open_s3_store(s3_client: Callable[[], Any], bucket: str, prefix: str) -> S3ArtifactStore:
    """Build the client (lazily, only for S3 URIs) with the same clear errors as the store's calls."""
    try:
        client = s3_client()
    except BotoCoreError as exc:  # an unknown AWS profile, a missing region, ...
        raise StoreAccessError(f"cannot open an S3 client for s3://{bucket}/{prefix}: {exc}") from None
    return S3ArtifactStore(client, bucket, prefix)


class S3ArtifactStore:
    def __init__(self, client: Any, bucket: str, prefix: str = "", show_progress: bool = True) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.show_progress = show_progress

    def __repr__(self) -> str:
        return f"S3ArtifactStore({self.uri()!r})"

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def uri(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self.key(*parts)}"

    # -- the port -------------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Fail now, not after training, if ``publish`` would be refused: list the prefix (a
        missing bucket, bad credentials), then put and delete a small probe object under it
        (s3:PutObject). In a versioned bucket the probe's own version is deleted (a plain delete
        would only add a delete marker and keep it). A refused delete is only logged: the probe
        then stays behind, since publishing itself needs no delete permission."""
        self._check_bucket()
        probe = self.key(f".write-probe-{uuid.uuid4().hex}")
        with self._errors(f"writing to {self.uri()} (a probe before training)"):
            put = self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"probe\n", ContentType="text/plain")
        version = {"VersionId": put["VersionId"]} if put.get("VersionId") else {}
        try:
            with self._errors(f"deleting the probe s3://{self.bucket}/{probe}"):
                self.client.delete_object(Bucket=self.bucket, Key=probe, **version)
        except StoreAccessError as exc:
            log.warning("%s; delete it by hand (publishing needs no s3:DeleteObject%s)", exc,
                        "Version" if version else "")

    def publish(self, version: str, files: Mapping[str, Path], primary: str = "model.pt") -> PublishedArtifact:
        self._check_bucket()
        digests: dict[str, str] = {}
        for name, path in files.items():
            digests[name] = file_sha256(Path(path))
            key = self.key(version, name)
            with self._errors(f"upload to {self.uri(version, name)}"), self._bar(f"upload {name}", Path(path)) as bar:
                self.client.upload_file(str(path), self.bucket, key, Callback=bar.update,
                                        ExtraArgs={"Metadata": {SHA256_METADATA: digests[name]}})
        with self._errors(f"writing {self.uri(LATEST)}"):
            self.client.put_object(Bucket=self.bucket, Key=self.key(LATEST), Body=(version + "\n").encode(),
                                   ContentType="text/plain")
        log.info("published %s (LATEST -> %s)", self.uri(version), version)
        return PublishedArtifact(self.uri(version, primary), version, digests.get(primary, ""))

    def latest_version(self) -> str:
        try:
            with self._errors(f"reading {self.uri(LATEST)}"):
                body = self.client.get_object(Bucket=self.bucket, Key=self.key(LATEST))["Body"].read()
        except _NotFound:
            raise ArtifactNotFound(f"no published model at {self.uri()} (missing {self.uri(LATEST)})") from None
        version = body.decode("utf-8", "replace").strip()  # a garbled pointer fails fetch's SAFE_NAME check
        if not version:
            raise ArtifactNotFound(f"{self.uri(LATEST)} is empty")
        return version

    def versions(self) -> list[str]:
        found: set[str] = set()
        base = self.key() + "/" if self.prefix else ""
        with self._errors(f"listing {self.uri()}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base, Delimiter="/"
            ):
                found.update(p["Prefix"][len(base):].rstrip("/") for p in page.get("CommonPrefixes", []))
        return sorted(found)

    def fetch(self, destination: Path, version: str | None = None, name: str = "model.pt") -> Path:
        """Download ``<version>/<name>`` to ``destination/<version>/<name>``; a copy already
        there that matches the object's sha256 is reused (the destination is a cache)."""
        version = version or self.latest_version()
        for part_name in (version, name):
            if not SAFE_NAME.fullmatch(part_name):
                raise ArtifactNotFound(f"refusing the unsafe version or file name {part_name!r} from {self.uri()}")
        expected, size = self._recorded_sha256(version, name)
        target = Path(destination) / version / name
        try:
            return self._download(version, name, target, expected, size)
        except OSError as exc:  # the cache, not S3: unreadable, read-only, a file in the way, a full disk
            raise ModelLoadError(f"cannot use the model cache {destination} for {self.uri(version, name)}: "
                                 f"{exc.strerror or exc} ({exc.filename or target}); "
                                 "set EUROSAT_MODEL_CACHE_DIR to a folder this user can write") from None

    # -- helpers --------------------------------------------------------------------------------
    def _download(self, version: str, name: str, target: Path, expected: str, size: int) -> Path:
        if target.is_file() and file_sha256(target) == expected:
            log.info("using cached %s (sha256 verified)", target)
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(name + ".part")
        try:
            with self._errors(f"download of {self.uri(version, name)}"), \
                    self._bar(f"download {name}", size=size) as bar:
                self.client.download_file(self.bucket, self.key(version, name), str(part), Callback=bar.update)
            actual = file_sha256(part)
            if actual != expected:
                raise ArtifactIntegrityError(
                    f"{self.uri(version, name)}: downloaded sha256 {actual} does not match the recorded "
                    f"{expected}; refusing it (the object was altered or damaged)"
                )
        except _NotFound:
            part.unlink(missing_ok=True)
            raise ArtifactNotFound(f"{self.uri(version, name)} disappeared during the download") from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, target)
        target.with_name(name + ".sha256").write_text(f"{expected}  {name}\n")  # the local store's sidecar
        return target

    def _recorded_sha256(self, version: str, name: str) -> tuple[str, int]:
        """The sha256 kept with the object, and its size."""
        try:
            with self._errors(f"reading {self.uri(version, name)}"):
                head = self._head(version, name)
        except _NotFound:
            self._check_bucket()  # a HEAD says 404 alike for a missing key and a missing bucket
            raise ArtifactNotFound(f"{self.uri(version, name)} does not exist") from None
        expected = head.get("Metadata", {}).get(SHA256_METADATA, "")
        if len(expected) != 64:
            raise ArtifactIntegrityError(
                f"{self.uri(version, name)} has no sha256 metadata; refusing an unverifiable object"
            )
        return expected, int(head.get("ContentLength", 0))

    def _head(self, version: str, name: str) -> dict[str, Any]:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key(version, name))
        except ClientError as exc:
            if str(error_code(exc)) in BARE_REFUSAL:
                self._check_bucket()  # a listing names the cause (ExpiredToken, AccessDenied, ...)
            raise

    def _check_bucket(self) -> None:
        """Fail early, with S3's precise error code, if the bucket is missing or access is refused
        (a listing carries an error body; a HEAD only a bare status)."""
        with self._errors(f"listing {self.uri()}"):
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.key(), MaxKeys=1)

    def _missing_bucket(self) -> StoreAccessError:
        return StoreAccessError(f"bucket {self.bucket} does not exist; create it or fix --artifact-uri")

    def _bar(self, desc: str, path: Path | None = None, size: int = 0) -> tqdm:
        total = path.stat().st_size if path is not None else size
        return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                    disable=not self.show_progress)

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate botocore failures into one clear domain error; a missing object or bucket
        surfaces as ``_NotFound`` for the caller to name."""
        try:
            yield
        except (ClientError, BotoCoreError, Boto3Error) as exc:  # Boto3Error: the transfer manager's wrappers
            raise self._translate(exc, action) from None

    def _translate(self, exc: BaseException, action: str) -> Exception:
        cause = _root_cause(exc)
        if isinstance(cause, (NoCredentialsError, PartialCredentialsError)):
            return StoreAccessError(
                f"{action} failed: no usable AWS credentials ({cause}); set AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with an IAM role"
            )
        if isinstance(cause, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)):
            return StoreAccessError(f"{action} failed: cannot reach S3 ({cause}); check the network, "
                                    "the region and EUROSAT_AWS_ENDPOINT_URL")
        if isinstance(cause, ClientError):
            error = cause.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = error.get("Message") or cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
            if code == "NoSuchBucket":
                return self._missing_bucket()
            if code in NOT_FOUND:
                return _NotFound(f"{action} failed: not found")
            if code in BAD_CREDENTIALS:
                return StoreAccessError(f"{action} failed: AWS credentials expired or invalid ({code}: {message}); "
                                        "refresh them (e.g. aws sso login) or fix the keys")
            if code == "403":
                return StoreAccessError(f"{action} failed: access denied (HTTP 403): the AWS credentials are "
                                        f"invalid or lack s3:GetObject/ListBucket on {self.uri()}")
            if code in S3_DENIED:
                return StoreAccessError(f"{action} failed: access denied ({code}); the credentials need "
                                        f"s3:ListBucket/GetObject/PutObject on {self.uri()}")
            return StoreAccessError(f"{action} failed: {code}: {message}")
        if isinstance(cause, BotoCoreError):
            return StoreAccessError(f"{action} failed: {cause}")
        return StoreAccessError(f"{action} failed: {type(cause).__name__}: {cause}")


class _NotFound(ArtifactNotFound):
    """S3 said 404; callers catch it to say whether an object or the bucket is missing."""


def _root_cause(exc: BaseException) -> BaseException:
    """boto3's transfer manager wraps the botocore error (S3UploadFailedError, RetriesExceededError)."""
    seen = exc
    while not isinstance(seen, (ClientError, BotoCoreError)):
        inner = seen.__cause__ or seen.__context__ or getattr(seen, "last_exception", None)
        if inner is None:
            return exc
        seen = inner
    return seen
