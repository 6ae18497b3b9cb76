"""``ImageBuilder`` through buildah (or podman, same flags), for machines without a Docker engine.

Daemonless: it needs no service running. Where namespaces are not available (containers, CI
sandboxes) set ``BUILDAH_ISOLATION=chroot``; ``STORAGE_DRIVER=vfs`` where overlay is not.
The registry login lives in a throw-away auth file, so the token does not outlive the push.
"""

from __future__ import annotations

import shutil
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


class BuildahBuilder:
    def __init__(self, executable: str = "buildah", network: str | None = None, show_progress: bool = True,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        self.executable = executable
        self.name = Path(executable).name
        self.network = network
        self.show_progress = show_progress
        self.idle_timeout = idle_timeout  # seconds without output before a build or push counts as hung

    @staticmethod
    def installed(executable: str) -> bool:
        return shutil.which(executable) is not None

    def _build_command(self) -> list[str]:
        # podman's build and buildah's bud take the same flags
        return [self.executable, "build" if self.name == "podman" else "bud"]

    def build(self, context: Path, tag: str, build_args: Mapping[str, str],
              staged_files: Mapping[str, Path] | None = None) -> str:
        with tempfile.TemporaryDirectory(prefix="eurosat-build-") as tmp, stage_files(context, staged_files):
            iidfile = Path(tmp) / "iid"
            argv = self._build_command() + ["--tag", tag, "--iidfile", str(iidfile), "--layers"]
            argv += ["--network", self.network] if self.network else []
            for key, value in build_args.items():
                argv += ["--build-arg", f"{key}={value}"]
            command = StreamedCommand(argv + [str(context)], idle_timeout=self.idle_timeout)
            progress = BuildProgress(self.show_progress, f"{self.name} build {tag}")
            try:
                code = command.run(progress)
            finally:
                progress.close()
            if code != 0:
                raise BuildError(f"{self.name} build of {context} failed (exit {code}); its last lines:\n"
                                 f"{command.output()}")
            return iidfile.read_text().strip()

    def push(self, image: str, destination: str, login: RegistryLogin) -> str:
        tls = ["--tls-verify=false"] if login.plain_http else []
        with tempfile.TemporaryDirectory(prefix="eurosat-auth-") as tmp:
            authfile = str(Path(tmp) / "auth.json")
            done = run_quiet([self.executable, "login", "--authfile", authfile, *tls, "--username", login.username,
                              "--password-stdin", login.registry], stdin=login.password)
            if done.returncode != 0:
                message = (done.stderr or done.stdout).strip()
                hint = (" (expired or wrong registry credentials: get a fresh token and retry)"
                        if looks_denied(message) else "")
                raise BuildError(f"{self.name} login to {login.registry} failed{hint}: {message}")
            digestfile = Path(tmp) / "digest"
            _, output = push_with_progress(
                [self.executable, "push", "--authfile", authfile, *tls,
                 "--digestfile", str(digestfile), image, f"docker://{destination}"],
                self.name, destination, self.show_progress, self.idle_timeout)
            digest = digestfile.read_text().strip() if digestfile.is_file() else ""
            if not digest.startswith("sha256:"):
                raise BuildError(f"{self.name} push {destination} reported no digest:\n{output}")
            return digest
