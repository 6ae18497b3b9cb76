"""Fixtures for the integration tests: no test may write into the project, and folders or files
the process may not write or read (also when the tests run as root, who ignores permissions)."""

from __future__ import annotations

import builtins
import errno
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def outside_the_project(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The model factory's folders default to ``runs/`` and the shipped ``models/`` under the
    working directory, the project root in CI: a test that forgets a flag must not overwrite a
    real run's checkpoint (its resume) or the shipped model. Subprocesses inherit these too."""
    root = tmp_path_factory.mktemp("eurosat-defaults")
    monkeypatch.setenv("EUROSAT_CHECKPOINT_DIR", str(root / "checkpoints"))
    monkeypatch.setenv("EUROSAT_WORK_DIR", str(root / "output"))
    monkeypatch.setenv("EUROSAT_ARTIFACT_URI", str(root / "store"))
    return root


def _refused(path: object) -> PermissionError:
    return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))


@pytest.fixture
def read_only_folder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], Path]]:
    """Makes a folder read-only; as root, by refusing to create files in it, as the kernel would."""
    folders: list[Path] = []

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        folders.append(folder)
        if os.geteuid() == 0:
            real_open = os.open

            def refusing_open(path, flags, *args, **kwargs):
                if flags & os.O_CREAT and Path(os.fspath(path)).parent == folder:
                    raise _refused(path)
                return real_open(path, flags, *args, **kwargs)

            monkeypatch.setattr(os, "open", refusing_open)
        return folder

    yield make
    for folder in folders:
        folder.chmod(0o755)


@pytest.fixture
def unreadable_file(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], Path]]:
    """Makes a file unreadable (a bind mount owned by another user); as root, by refusing to open it."""
    files: list[Path] = []

    def make(path: Path) -> Path:
        path.chmod(0o000)
        files.append(path)
        if os.geteuid() == 0:
            real_open = builtins.open

            def refusing_open(file, *args, **kwargs):
                if isinstance(file, (str, os.PathLike)) and Path(os.fspath(file)) in files:
                    raise _refused(file)
                return real_open(file, *args, **kwargs)

            monkeypatch.setattr(builtins, "open", refusing_open)
            monkeypatch.setattr(io, "open", refusing_open)  # pathlib's read_text/read_bytes
        return path

    yield make
    for path in files:
        path.chmod(0o644)
