"""Fixtures for the integration tests: no test may write into the project; folders or files the
process may not write or read (also when the tests run as root, who ignores permissions); the
deploy tests' AWS environment on the moto server; the model the API tests serve."""

from __future__ import annotations

import builtins
import errno
import io
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SHIPPED_MODEL
from tests.integration.deploy_helpers import REGION, Moto


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


@pytest.fixture
def moto(moto_server, monkeypatch, tmp_path) -> Moto:
    """The ``aws`` fixture's environment without its reset (a reset after IAM use costs seconds):
    each test deploys under its own name prefix instead. HOME is a fresh folder, so the
    `image` command's record of the last pushed image starts empty."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "EUROSAT_AWS_REGION": REGION, "EUROSAT_AWS_ENDPOINT_URL": moto_server,
        "EUROSAT_DEPLOY_POLL_SECONDS": "0.05", "EUROSAT_DEPLOY_WAIT_TIMEOUT": "30", "HOME": str(tmp_path / "home"),
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "EUROSAT_AWS_PROFILE", "EUROSAT_DEPLOY_NAME_PREFIX", "EUROSAT_DEPLOY_MODEL_URI"):
        monkeypatch.delenv(key, raising=False)
    return Moto(moto_server)


@pytest.fixture
def prefix() -> str:
    """A name prefix of its own for each deploy test: the tests share one moto server unreset."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def served_model(request: pytest.FixtureRequest) -> Path:
    """The shipped model when it is there, else the tiny real model of ``tiny_model_store``."""
    if (SHIPPED_MODEL / "LATEST").is_file():
        return SHIPPED_MODEL
    return request.getfixturevalue("tiny_model_store")


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test if the training images are read: for checks that must come before."""
    from eurosat_service.adapters.torch_trainer import TorchTrainer

    monkeypatch.setattr(TorchTrainer, "load_pixels", lambda self, images: pytest.fail("decoded the images"))
