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
from eurosat_service.adapters.writable_folder import unwritable_reason
from eurosat_service.domain.errors import ArtifactIntegrityError, ArtifactNotFound, ModelLoadError, StoreAccessError
from eurosat_service.domain.model_uri import LATEST
from eurosat_service.domain.ports import PublishedArtifact


class LocalArtifactStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def check_writable(self) -> None:
        """Fail now if ``publish`` could not write (``unwritable_reason``)."""
        if reason := unwritable_reason(self.root):
            raise StoreAccessError(f"cannot publish to {self.root}: {reason}; "
                                   "fix --artifact-uri or the folder's permissions")

    def publish(self, version: str, files: Mapping[str, Path], primary: str = "model.pt") -> PublishedArtifact:
        target = self.root / version
        try:
            target.mkdir(parents=True, exist_ok=True)
            digests = {name: self._put(target, name, Path(source)) for name, source in files.items()}
            _atomic_write(self.root / LATEST, version + "\n")
        except OSError as exc:  # a full disk, a folder turned read-only since check_writable
            raise StoreAccessError(f"publishing {version} to {self.root} failed ({_reason(exc)}); "
                                   f"{LATEST} was left as it was") from None
        return PublishedArtifact(str(target / primary), version, digests.get(primary, ""))

    @staticmethod
    def _put(target: Path, name: str, source: Path) -> str:
        destination = target / name
        if source.resolve() != destination.resolve():
            tmp = destination.with_name(name + ".part")
            try:
                shutil.copyfile(source, tmp)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            os.replace(tmp, destination)
        digest = file_sha256(destination)
        (target / f"{name}.sha256").write_text(f"{digest}  {name}\n")
        return digest

    def latest_version(self) -> str:
        pointer = self.root / LATEST
        if not pointer.is_file():
            raise ArtifactNotFound(f"no published model under {self.root} (missing {pointer})")
        return _read_text(pointer).strip()

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def fetch(self, destination: Path, version: str | None = None, name: str = "model.pt") -> Path:
        """Verify the stored file in place (no copy is needed on the same disk) and return it."""
        version = version or self.latest_version()
        return verified_file(self.root / version / name)


def verified_file(path: Path) -> Path:
    """``path`` if it matches the sha256 in ``<path>.sha256``; refuse it otherwise. A file the
    process may not read (a bind mount owned by another user) is a ``ModelLoadError``."""
    if not path.is_file():
        raise ArtifactNotFound(f"{path} does not exist")
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        raise ArtifactIntegrityError(f"{path} has no {sidecar.name} beside it; refusing an unverifiable file")
    recorded = _read_text(sidecar).split()
    expected = recorded[0] if recorded else ""
    try:
        actual = file_sha256(path)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {_reason(exc)}") from None
    if actual != expected:
        raise ArtifactIntegrityError(f"{path}: sha256 {actual} does not match the recorded {expected}")
    return path


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ArtifactIntegrityError(f"{path} is not text; refusing an unverifiable file") from None
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)
