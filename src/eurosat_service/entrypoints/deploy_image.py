"""Build the API's container image and push it to ECR; prints the image URI with its digest.

``python -m eurosat_service.entrypoints.deploy image [flags]``, or on its own
``python -m eurosat_service.entrypoints.deploy_image [flags]``. Progress goes to stderr, one JSON
object to stdout. The tag is ``<git revision>-<model version>`` (plus the build time for
uncommitted changes); when it is already pushed, nothing is rebuilt.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tomllib
from pathlib import Path

from eurosat_service import __version__
from eurosat_service.adapters.git_checkout import describe_checkout
from eurosat_service.adapters.local_artifact_store import LocalArtifactStore
from eurosat_service.domain.deployment import DeploymentNames
from eurosat_service.domain.errors import ArtifactNotFound, BuildError
from eurosat_service.entrypoints import cli
from eurosat_service.entrypoints.container import build_container
from eurosat_service.entrypoints.last_image import record_last_image
from eurosat_service.entrypoints.settings import PROJECT_ROOT
from eurosat_service.service_layer.image_release import release_image

log = logging.getLogger("eurosat_service.image")

SHIPPED_MODEL = Path("models") / "eurosat-resnet18"
# What the Dockerfile takes from the context: a change here makes the build "dirty".
IMAGE_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "src", "docker", str(SHIPPED_MODEL))
SUPPRESS = argparse.SUPPRESS  # unset flags leave no attribute, so a parent parser's values survive


def add_image_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--context", type=Path, default=SUPPRESS,
                   help="build context holding the Dockerfile and models/eurosat-resnet18 (default: the project)")
    p.add_argument("--repository", default=SUPPRESS, help="ECR repository name [EUROSAT_IMAGE_REPOSITORY]")
    p.add_argument("--keep", type=int, default=SUPPRESS,
                   help="images the lifecycle policy keeps [EUROSAT_IMAGE_KEEP_COUNT, default 10]")
    p.add_argument("--builder", choices=("auto", "docker", "buildah", "podman"), default=SUPPRESS,
                   help="build tool [EUROSAT_IMAGE_BUILDER, default auto: docker if its engine answers]")
    p.add_argument("--network", default=SUPPRESS, help="network of the build's RUN steps, e.g. host "
                                                       "[EUROSAT_IMAGE_BUILD_NETWORK]")
    p.add_argument("--build-arg", action="append", metavar="KEY=VALUE", default=SUPPRESS,
                   help="a Dockerfile build argument (BASE_IMAGE, TORCH_INDEX_URL, ...); repeatable")
    p.add_argument("--pip-cert", type=Path, default=SUPPRESS,
                   help="CA bundle pip needs inside the build, e.g. behind a TLS proxy "
                        "[EUROSAT_IMAGE_PIP_CERT, default $PIP_CERT if set]")
    p.add_argument("--registry-url", default=SUPPRESS,
                   help="push to this registry (host:port, http:// for one without TLS) instead of the one "
                        "ECR reports [EUROSAT_REGISTRY_URL]")
    p.add_argument("--revision", default=SUPPRESS, help="source revision for the tag (default: the git HEAD)")
    p.add_argument("--model-version", default=SUPPRESS, help="model version for the tag (default: the "
                                                             "shipped model's LATEST)")
    p.add_argument("--name-prefix", "--prefix", dest="name_prefix", default=SUPPRESS,  # as every other command
                   help="deployment name prefix, tagged on the repository [EUROSAT_DEPLOY_NAME_PREFIX]")
    p.add_argument("--region", default=SUPPRESS, help="AWS region [EUROSAT_AWS_REGION]")
    p.add_argument("--profile", default=SUPPRESS, help="AWS profile [EUROSAT_AWS_PROFILE]")
    p.add_argument("--endpoint-url", default=SUPPRESS, help="AWS endpoint, e.g. moto [EUROSAT_AWS_ENDPOINT_URL]")
    p.add_argument("--no-progress", action="store_true", default=SUPPRESS, help="no progress bars")


def add_image_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``image`` subcommand on the deploy job's parser."""
    p = subparsers.add_parser("image", help="build the container image and push it to ECR", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_image_arguments(p)
    return p


def parse_build_args(pairs: list[str] | None) -> dict[str, str]:
    args = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BuildError(f"--build-arg {pair!r}: expected KEY=VALUE")
        args[key] = value
    return args


def shipped_model_version(context: Path) -> str:
    try:
        return LocalArtifactStore(context / SHIPPED_MODEL).latest_version()
    except ArtifactNotFound as exc:
        raise BuildError(f"the image bakes in {SHIPPED_MODEL}, but {exc}: train and publish a model "
                         "there first (make train), or pass --context with one") from None


def project_version(context: Path) -> str:
    try:
        return tomllib.loads((context / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return __version__


def pip_cert(configured: Path | str | None) -> Path | None:
    """The configured CA bundle, else pip's own ``$PIP_CERT`` when that file exists."""
    if configured:
        return Path(configured)
    from_env = os.environ.get("PIP_CERT")
    return Path(from_env) if from_env and Path(from_env).is_file() else None


def run_image(args: argparse.Namespace) -> int:
    def opt(name: str) -> object:
        return getattr(args, name, None)

    cli.setup_logging()
    overrides = {key: value for key, value in {
        "image_repository": opt("repository"), "image_keep_count": opt("keep"), "image_builder": opt("builder"),
        "image_build_network": opt("network"), "image_pip_cert": opt("pip_cert"),
        "registry_url": opt("registry_url"), "deploy_name_prefix": opt("name_prefix"),
        "aws_region": opt("region"), "aws_profile": opt("profile"), "aws_endpoint_url": opt("endpoint_url"),
    }.items() if value is not None}
    container = build_container(**overrides)
    config = container.config

    context = Path(opt("context") or PROJECT_ROOT).resolve()
    if not (context / "Dockerfile").is_file():
        raise BuildError(f"no Dockerfile in {context}: pass --context with the project's folder")
    model_version = str(opt("model_version") or shipped_model_version(context))
    if opt("revision"):
        revision, dirty = str(opt("revision")), False
    else:
        revision, dirty = describe_checkout(context, IMAGE_INPUTS)
        if dirty:
            log.info("uncommitted changes in the image's files: the tag gets the build time")
    names = DeploymentNames(config.deploy_name_prefix())  # validates the prefix before anything happens

    builder = container.image_builder()  # no build tool or no engine: stops here, before any AWS call
    builder.show_progress = not opt("no_progress")
    release = release_image(
        builder,
        container.image_registry(),
        context=context,
        repository=config.image_repository(),
        revision=revision,
        model_version=model_version,
        version=project_version(context),
        dirty=dirty,
        tags=names.tags,
        keep_images=config.image_keep_count(),
        build_args=parse_build_args(opt("build_arg")),  # type: ignore[arg-type]
        pip_cert=pip_cert(config.image_pip_cert()),
        on_step=log.info,
    )
    log.info("recorded in %s for `deploy up`", record_last_image(release.uri))
    print(json.dumps({"image": release.uri, "repository": release.repository, "tag": release.tag,
                      "digest": release.digest, "built": release.built}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eurosat_service.entrypoints.deploy_image", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_image_arguments(p)
    return run_image(p.parse_args(argv))


if __name__ == "__main__":
    cli.run(main)
