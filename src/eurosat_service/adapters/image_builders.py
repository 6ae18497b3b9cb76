"""Picks the container build tool: docker where an engine answers, else buildah, else podman."""

from __future__ import annotations

import os
import shutil

from eurosat_service.adapters.buildah_builder import BuildahBuilder
from eurosat_service.adapters.docker_cli_builder import DockerCliBuilder
from eurosat_service.adapters.engine_process import DEFAULT_IDLE_TIMEOUT
from eurosat_service.domain.errors import BuildError
from eurosat_service.domain.ports import ImageBuilder

CHOICES = ("auto", "docker", "buildah", "podman")
NONE_FOUND = ("no container build tool: install Docker and start its engine (or point DOCKER_HOST at one), "
              "or install buildah or podman")


def open_image_builder(preference: str = "auto", network: str | None = None,
                       show_progress: bool = True, idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> ImageBuilder:
    """The builder for ``preference``; a clear ``BuildError`` when it cannot work here."""
    if preference not in CHOICES:
        raise BuildError(f"unknown image builder {preference!r}; choose one of {', '.join(CHOICES)}")
    if preference in ("auto", "docker") and shutil.which("docker"):
        docker = DockerCliBuilder(network=network, show_progress=show_progress, idle_timeout=idle_timeout)
        if docker.engine_version():
            return docker
        if preference == "docker":
            where = os.environ.get("DOCKER_HOST") or "the default socket"
            raise BuildError(f"docker is installed but no Docker engine answers at {where}: start dockerd "
                             "(or Docker Desktop), or choose --builder buildah/podman")
    if preference == "docker":
        raise BuildError("docker is not installed: " + NONE_FOUND)
    for tool in (("buildah", "podman") if preference == "auto" else (preference,)):
        if BuildahBuilder.installed(tool):
            return BuildahBuilder(tool, network=network, show_progress=show_progress, idle_timeout=idle_timeout)
    if preference != "auto":
        raise BuildError(f"{preference} is not installed: " + NONE_FOUND)
    if shutil.which("docker"):
        raise BuildError("docker is installed but no Docker engine answers "
                         f"(DOCKER_HOST={os.environ.get('DOCKER_HOST') or 'unset'}), and neither buildah nor "
                         "podman is installed: start the Docker engine")
    raise BuildError(NONE_FOUND)
