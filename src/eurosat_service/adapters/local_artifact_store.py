"""Artifact store on the local file system (the default).

Layout under the root: ``<version>/<file>`` with a ``<file>.sha256`` beside each, and ``LATEST``
holding the newest published version. ``LATEST`` is replaced atomically after every file is in
place, so a failed publish never points at a partial version.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from eurosat_service.adapters.sha256 import file_sha256
from eurosat_service.domain.errors import ArtifactIntegrityError, ArtifactNotFound
from eurosat_service.domain.ports import PublishedArtifact

LATEST = "LATEST"


class LocalArtifactStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def publish(self, version: str, files: Mapping[str, Path], primary: str = "model.pt") -> PublishedArtifact:
        target = self.root / version
        target.mkdir(parents=True, exist_ok=True)
        digests = {}
        for name, source in files.items():
            destination = target / name
            if Path(source).resolve() != destination.resolve():
                tmp = destination.with_name(name + ".part")
                shutil.copyfile(source, tmp)
                os.replace(tmp, destination)
            digests[name] = file_sha256(destination)
            (target / f"{name}.sha256").write_text(f"{digests[name]}  {name}\n")
        _atomic_write(self.root / LATEST, version + "\n")
        return PublishedArtifact(str(target / primary), version, digests.get(primary, ""))

    def latest_version(self) -> str:
        pointer = self.root / LATEST
        if not pointer.is_file():
            raise ArtifactNotFound(f"no published model under {self.root} (missing {pointer})")
        return pointer.read_text().strip()

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def fetch(self, destination: Path, version: str | None = None, name: str = "model.pt") -> Path:
        """Verify the stored file in place (no copy is needed on the same disk) and return it."""
        version = version or self.latest_version()
        return verified_file(self.root / version / name)


def verified_file(path: Path) -> Path:
    """``path`` if it matches the sha256 in ``<path>.sha256``; refuse it otherwise."""
    if not path.is_file():
        raise ArtifactNotFound(f"{path} does not exist")
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        raise ArtifactIntegrityError(f"{path} has no {sidecar.name} beside it; refusing an unverifiable file")
    expected = sidecar.read_text().split()[0] if sidecar.read_text().strip() else ""
    actual = file_sha256(path)
    if actual != expected:
        raise ArtifactIntegrityError(f"{path}: sha256 {actual} does not match the recorded {expected}")
    return path


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)
