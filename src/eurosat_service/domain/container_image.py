"""The container image in the problem's terms: what it is tagged with and where it was published.

ECR repositories here have immutable tags, so a tag must name exactly one image: the git revision
and the model version do, for a clean checkout. A build from uncommitted changes gets the build
time as well, so two such builds never claim the same tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from eurosat_service.domain.errors import BuildError

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
LOCAL_REPOSITORY = "eurosat-service"  # the name images get in the local engine before pushing
PIP_CERT_IN_CONTEXT = "docker/build-certs/pip-cert.pem"  # where the Dockerfile takes a proxy's CA from ...
PIP_CERT_IN_BUILD = "/build/certs/pip-cert.pem"  # ... and where it is inside the build stage


def image_tag(revision: str, model_version: str, dirty: bool = False, built_at: datetime | None = None) -> str:
    """``<revision>-<model version>``, plus ``-dirty-<UTC time>`` for uncommitted changes."""
    tag = f"{revision}-{model_version}"
    if dirty:
        if built_at is None:
            raise ValueError("a dirty build needs its build time")
        tag += f"-dirty-{built_at.strftime('%Y%m%dt%H%M%S')}"
    if not _TAG.match(tag):
        raise BuildError(f"{tag!r} is not a valid image tag: revision {revision!r} and model version "
                         f"{model_version!r} may only hold letters, digits, '_', '.' and '-'")
    return tag


def check_repository_name(name: str) -> str:
    if not 2 <= len(name) <= 256 or not _REPOSITORY.match(name):
        raise BuildError(f"{name!r} is not a valid repository name: lowercase letters, digits and "
                         "single '.', '_', '-' or '/' between them")
    return name


@dataclass(frozen=True)
class RegistryLogin:
    """Short-lived credentials for one registry host (an ECR token lasts 12 hours)."""

    registry: str  # host[:port], as `docker login` takes it
    username: str
    password: str = field(repr=False)
    plain_http: bool = False  # a local stand-in registry without TLS


@dataclass(frozen=True)
class ImageRelease:
    """A pushed image. ``uri`` pins the digest, so a deployment runs exactly these bytes."""

    repository: str  # registry/name
    tag: str
    digest: str  # sha256:... of the manifest
    built: bool  # False when this tag was already in the registry and was reused

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def uri(self) -> str:
        return f"{self.repository}@{self.digest}"
