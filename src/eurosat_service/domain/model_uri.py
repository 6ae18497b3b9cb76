"""Where a published model lives on S3, parsed from its URI in the one way every reader uses:
the API downloads exactly these objects (adapters/artifact_uri.py), and a deployment's task
role may read exactly these (adapters/iam_task_role.py), so the two can never disagree."""

from __future__ import annotations

import re
from dataclasses import dataclass

MODEL_FILE = "model.pt"  # the file the API loads from a version of an artifact store
LATEST = "LATEST"  # a store's pointer naming its newest version
S3_FORMS = "s3://bucket/prefix (its latest version) or s3://bucket/prefix/<version>/model.pt"
TASK_MODEL_FORMS = f"{S3_FORMS}, or a path inside the image such as /opt/eurosat-service/models/eurosat-resnet18"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # "gs:", "S3:", and mistyped ones such as "s3:/b"


@dataclass(frozen=True)
class S3Model:
    """A model on S3: ``s3://b/p`` is a store, read through ``p/LATEST`` and then
    ``p/<version>/model.pt``; ``s3://b/p/<version>/<name>.pt`` is that one object."""

    bucket: str
    prefix: str  # the store's key prefix, "" at the bucket's root
    version: str | None = None  # None: whichever version LATEST names when the task starts
    name: str = MODEL_FILE

    @classmethod
    def parse(cls, uri: str | None) -> S3Model | None:
        """None for a model that is not on S3; ``ValueError`` for a malformed S3 URI."""
        if not uri or not uri.startswith("s3://"):
            return None
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        key = key.strip("/")
        if not bucket:
            raise ValueError(f"model URI {uri!r} has no bucket; expected {S3_FORMS}")
        if not key.endswith(".pt"):
            return cls(bucket, key)
        parts = key.split("/")
        if len(parts) < 2:
            raise ValueError(f"model URI {uri!r} names a file outside any version folder; expected {S3_FORMS}")
        return cls(bucket, "/".join(parts[:-2]), parts[-2], parts[-1])

    @property
    def readable_keys(self) -> tuple[str, ...]:
        """The keys the API reads; ``*`` stands for any version, since LATEST may move."""
        if self.version:
            return (self._key(self.version, self.name),)
        return (self._key(LATEST), self._key("*", self.name))

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def __str__(self) -> str:
        return ", ".join(f"s3://{self.bucket}/{key}" for key in self.readable_keys)


def check_task_model_uri(uri: str) -> S3Model | None:
    """The S3 model a deployed task would serve, None for a path inside its image; ``ValueError``
    for any URI the API refuses (adapters/artifact_uri.py reads ``s3://`` and paths, ``file://``
    optional) or would look for as a local path that cannot exist (``s3:/b/m``), so a deployment
    is refused before it starts a task that can only fail."""
    model = S3Model.parse(uri)
    path = uri.removeprefix("file://")
    if model is None and (_SCHEME.match(path) or "://" in path):
        raise ValueError(f"model URI {uri!r} is not one the API can read; expected {TASK_MODEL_FORMS}")
    return model
