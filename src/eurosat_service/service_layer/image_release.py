"""Use case: build the API's container image and publish it to a registry (ECR).

The registry is asked first: credentials that are missing, expired or refused fail before a
minutes-long build, and a tag that already exists (same commit, same model) is reused instead of
rebuilt, since ECR's immutable tags would refuse it anyway. Every step is get-or-create, so a run
that stopped half-way is finished by the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from eurosat_service.domain.container_image import (
    LOCAL_REPOSITORY,
    PIP_CERT_IN_BUILD,
    PIP_CERT_IN_CONTEXT,
    ImageRelease,
    check_repository_name,
    image_tag,
)
from eurosat_service.domain.ports import ImageBuilder, ImageRegistry

DEFAULT_KEEP_IMAGES = 10


def _quiet(message: str) -> None:
    pass


def release_image(
    builder: ImageBuilder,
    registry: ImageRegistry,
    *,
    context: Path,
    repository: str,
    revision: str,
    model_version: str,
    version: str,
    dirty: bool = False,
    tags: Mapping[str, str] | None = None,
    keep_images: int = DEFAULT_KEEP_IMAGES,
    build_args: Mapping[str, str] | None = None,
    pip_cert: Path | None = None,
    on_step: Callable[[str], None] = _quiet,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ImageRelease:
    """Build ``context`` and push it as ``<repository>:<revision>-<model version>``."""
    check_repository_name(repository)
    tag = image_tag(revision, model_version, dirty, now() if dirty else None)

    repo = registry.ensure_repository(repository, dict(tags or {}), keep_images)
    on_step(f"{'created' if repo.created else 'using'} repository {repo.id}")
    login = registry.login()

    existing = registry.find_digest(repo.id, tag, login)
    if existing:
        on_step(f"{repo.id}:{tag} is already pushed ({existing}); reusing it")
        return ImageRelease(repo.id, tag, existing, built=False)

    args = {**(build_args or {}), "VERSION": version, "GIT_REVISION": revision}
    staged = {}
    if pip_cert is not None:
        staged[PIP_CERT_IN_CONTEXT] = pip_cert
        args["PIP_CERT"] = PIP_CERT_IN_BUILD
    local = f"{LOCAL_REPOSITORY}:{tag}"
    on_step(f"building {local} from {context} with {builder.name}")
    builder.build(context, local, args, staged)

    on_step(f"pushing {repo.id}:{tag}")
    digest = builder.push(local, f"{repo.id}:{tag}", login)
    release = ImageRelease(repo.id, tag, digest, built=True)
    on_step(f"pushed {release.uri}")
    return release
