"""Fixtures shared by every test: real EuroSAT images, generated datasets, a tiny trained model
and a moto server over HTTP. Nothing here reaches the internet or ``../shared``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_EUROSAT = ROOT / "tests" / "fixtures" / "eurosat"  # 3 real images per class (MIT licence)
SHIPPED_MODEL = ROOT / "models" / "eurosat-resnet18"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@pytest.fixture(scope="session")
def fixture_eurosat() -> Path:
    """The committed real images in the official layout (``<root>/2750/<Class>/*.jpg``)."""
    return FIXTURE_EUROSAT


def real_images() -> list[Path]:
    return sorted((FIXTURE_EUROSAT / "2750").glob("*/*.jpg"))


def generate_dataset(root: Path, per_class: int) -> Path:
    """A EuroSAT-layout folder of ``per_class`` images a class, made from the real fixtures by
    flips, rotations and brightness changes (so each is a plausible tile of its class)."""
    for class_dir in sorted((FIXTURE_EUROSAT / "2750").iterdir()):
        sources = sorted(class_dir.glob("*.jpg"))
        target = root / "2750" / class_dir.name
        target.mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            with Image.open(sources[n % len(sources)]) as image:
                variant = image.convert("RGB").rotate(90 * ((n // len(sources)) % 4))
                if (n // (4 * len(sources))) % 2:
                    variant = variant.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                variant = ImageEnhance.Brightness(variant).enhance(1 + 0.03 * (n % 5))
                variant.save(target / f"{class_dir.name}_{n + 1}.jpg", quality=95)
    return root


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[[int], Path]:
    def make(per_class: int = 6) -> Path:
        return generate_dataset(tmp_path / f"eurosat-{per_class}", per_class)

    return make


@pytest.fixture(scope="session")
def tiny_model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local artifact store holding a real model trained for one epoch on generated images."""
    from eurosat_service.adapters.confusion_matrix_png import render_confusion_matrix
    from eurosat_service.adapters.eurosat_files import EuroSATFolder
    from eurosat_service.adapters.local_artifact_store import LocalArtifactStore
    from eurosat_service.adapters.torch_trainer import TorchTrainer
    from eurosat_service.domain.model_card import TrainingConfig
    from eurosat_service.service_layer.training import train_and_publish

    base = tmp_path_factory.mktemp("tiny-model")
    source = EuroSATFolder(generate_dataset(base / "data", 5))
    store_root = base / "store"
    train_and_publish(
        source=source,
        trainer=TorchTrainer(source, show_progress=False),
        store=LocalArtifactStore(store_root),
        config=TrainingConfig(epochs=1, batch_size=16, threads=1),
        workdir=base / "work",
        render_confusion_matrix=render_confusion_matrix,
        name="tiny-test-model",
    )
    return store_root


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real moto server on loopback, spoken to over HTTP like AWS."""
    port = free_port()
    env = {**os.environ, "MOTO_ECS_SERVICE_RUNNING": "1", "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    proc = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/moto-api/", timeout=120, proc=proc)  # importing moto is slow on a busy machine
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # freeing a large moto state (EC2 in several regions) is slow
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean moto state and dummy credentials for one test; returns the endpoint URL."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "EUROSAT_AWS_REGION": "us-east-1",
        "EUROSAT_AWS_ENDPOINT_URL": moto_server,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server
