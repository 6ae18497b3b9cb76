"""The ports: what the use cases need from the outside world, as ``typing.Protocol``s.

Adapters implement them structurally; tests implement them with in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from eurosat_service.domain.dataset import LabeledImage
from eurosat_service.domain.model_card import ModelCard, TrainingConfig
from eurosat_service.domain.prediction import Prediction


class DatasetSource(Protocol):
    """A collection of labelled images in the EuroSAT layout."""

    def list_images(self) -> list[LabeledImage]: ...

    def read(self, image: LabeledImage) -> bytes: ...


@dataclass
class TrainedModel:
    """An opaque handle on a trained network plus what the trainer learnt about it."""

    network: Any
    architecture: str
    class_names: tuple[str, ...]
    history: list[dict[str, float]]
    seconds: float


ProgressCallback = Callable[[str, Mapping[str, float]], None]


class Trainer(Protocol):
    def train(
        self,
        train: Sequence[LabeledImage],
        val: Sequence[LabeledImage],
        class_names: Sequence[str],
        config: TrainingConfig,
    ) -> TrainedModel: ...

    def predict_probabilities(self, model: TrainedModel, images: Sequence[LabeledImage]) -> list[list[float]]:
        """Class probabilities per image, through the same preprocessing serving uses."""
        ...

    def save(self, model: TrainedModel, card: ModelCard, path: Path) -> ModelCard:
        """Write the model file; return the card completed with the weights' sha256."""
        ...

    def load(self, path: Path) -> TrainedModel: ...


@runtime_checkable
class Classifier(Protocol):
    """Classifies encoded images (JPEG, PNG, ...) for the API."""

    @property
    def card(self) -> ModelCard: ...

    def predict(self, images: Sequence[bytes]) -> list[Prediction]: ...


@dataclass(frozen=True)
class PublishedArtifact:
    uri: str
    version: str
    sha256: str


class ArtifactStore(Protocol):
    """Versioned model artifacts with a 'latest' pointer and a sha256 kept with every object."""

    def publish(self, version: str, files: Mapping[str, Path], primary: str = "model.pt") -> PublishedArtifact:
        """Upload every file, then move 'latest' to ``version``: never before all succeeded."""
        ...

    def fetch(self, destination: Path, version: str | None = None, name: str = "model.pt") -> Path:
        """Download one file of a version (latest if None), verified against its sha256."""
        ...

    def latest_version(self) -> str: ...

    def versions(self) -> list[str]: ...
