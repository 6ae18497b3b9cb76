"""``ImageBuilder`` through the ``docker`` CLI, for machines where a Docker engine answers.

Uses BuildKit when the buildx plugin is there, the legacy builder otherwise. Registry logins go
to a throw-away ``--config`` folder, so the token never lands in ``~/.docker/config.json``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from eurosat_service.adapters.engine_process import (
    DEFAULT_IDLE_TIMEOUT,
    BuildProgress,
    StreamedCommand,
    looks_denied,
    push_with_progress,
    run_quiet,
    stage_files,
)
from eurosat_service.domain.container_image import RegistryLogin
from eurosat_service.domain.errors import BuildError


class DockerCliBuilder:
    name = "docker"

    def __init__(self, executable: str = "docker", network: str | None = None, show_progress: bool = True,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        self.docker = executable
        self.network = network  # e.g. "host": lets a build reach a wheel server on the loopback
        self.show_progress = show_progress
        self.idle_timeout = idle_timeout  # seconds without output before a build or push counts as hung

    def engine_version(self) -> str | None:
        """The engine's version, None when no engine answers (or docker is not installed)."""
        try:
            done = run_quiet([self.docker, "version", "--format", "{{.Server.Version}}"], timeout=20)
        except BuildError:
            return None
        return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None

    def _buildkit(self) -> bool:
        if os.environ.get("DOCKER_BUILDKIT") == "0":
            return False
        return run_quiet([self.docker, "buildx", "version"], timeout=20).returncode == 0

    def build(self, context: Path, tag: str, build_args: Mapping[str, str],
              staged_files: Mapping[str, Path] | None = None) -> str:
        buildkit = self._buildkit()
        with tempfile.TemporaryDirectory(prefix="eurosat-build-") as tmp, stage_files(context, staged_files):
            iidfile = Path(tmp) / "iid"
            argv = [self.docker, "build", "--tag", tag, "--iidfile", str(iidfile)]
            argv += ["--progress=plain"] if buildkit else ["--force-rm"]  # legacy: no containers left on failure
            argv += ["--network", self.network] if self.network else []
            for key, value in build_args.items():
                argv += ["--build-arg", f"{key}={value}"]
            command = StreamedCommand(argv + [str(context)], env={"DOCKER_BUILDKIT": "1" if buildkit else "0"},
                                      idle_timeout=self.idle_timeout)
            progress = BuildProgress(self.show_progress, f"docker build {tag}")
            try:
                code = command.run(progress)
            finally:
                progress.close()
            if code != 0:
                raise BuildError(f"docker build of {context} failed (exit {code}); its last lines:\n{command.output()}")
            return iidfile.read_text().strip()

    def push(self, image: str, destination: str, login: RegistryLogin) -> str:
        with tempfile.TemporaryDirectory(prefix="eurosat-docker-config-") as config:
            docker = [self.docker, "--config", config]
            done = run_quiet(docker + ["login", "--username", login.username, "--password-stdin", login.registry],
                             stdin=login.password)
            if done.returncode != 0:
                message = (done.stderr or done.stdout).strip()
                hint = (" (expired or wrong registry credentials: get a fresh token and retry)"
                        if looks_denied(message) else "")
                raise BuildError(f"docker login to {login.registry} failed{hint}: {message}")
            tagged = run_quiet(docker + ["tag", image, destination])
            if tagged.returncode != 0:
                raise BuildError(f"docker tag {image} {destination} failed: {tagged.stderr.strip()}")
            progress, output = push_with_progress(docker + ["push", destination], "docker", destination,
                                                  self.show_progress, self.idle_timeout)
            if not progress.digest:
                raise BuildError(f"docker push {destination} reported no digest:\n{output}")
            return progress.digest
