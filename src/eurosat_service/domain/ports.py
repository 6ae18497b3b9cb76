"""The ports: what the use cases need from the outside world, as ``typing.Protocol``s.

Adapters implement them structurally; tests implement them with in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from eurosat_service.domain.container_image import RegistryLogin
from eurosat_service.domain.dataset import LabeledImage
from eurosat_service.domain.deployment import (
    Ensured,
    LogEvent,
    Placement,
    ServiceSpec,
    ServiceState,
    TaskDefinitionRef,
    TaskDefinitionSpec,
    TaskState,
)
from eurosat_service.domain.model_card import ModelCard, TrainingConfig
from eurosat_service.domain.model_uri import S3Model
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
    card: ModelCard | None = None  # set when loaded from a model file (version, class names, split)


ProgressCallback = Callable[[str, Mapping[str, float]], None]


class Trainer(Protocol):
    def train(
        self,
        train: Sequence[LabeledImage],
        val: Sequence[LabeledImage],
        class_names: Sequence[str],
        config: TrainingConfig,
        teachers: Sequence[TrainedModel] = (),
    ) -> TrainedModel:
        """Train from scratch, or with ``teachers``: start from the first one's weights and fit
        the mean of their eight-view (flips and rotations) average probabilities on ``train``
        beside the labels."""
        ...

    def predict_probabilities(
        self, model: TrainedModel, images: Sequence[LabeledImage], views: int = 1
    ) -> list[list[float]]:
        """Class probabilities per image, through the same preprocessing serving uses, averaged
        over ``views`` flips/rotations as serving with ``EUROSAT_VIEWS`` does."""
        ...

    def save(self, model: TrainedModel, card: ModelCard, path: Path) -> ModelCard:
        """Write the model file; return the card completed with the weights' sha256."""
        ...

    def load(self, path: Path) -> TrainedModel: ...


@runtime_checkable
class Classifier(Protocol):
    """Classifies encoded images (JPEG, PNG, ...) for the API.

    ``decode`` and ``predict_decoded`` split ``predict`` in two so the API can decode each upload
    on its own (one bad image fails alone) and batch the decoded pixels of many requests.
    """

    @property
    def card(self) -> ModelCard: ...

    def predict(self, images: Sequence[bytes]) -> list[Prediction]: ...

    def decode(self, image: bytes) -> Any:
        """Model input for one encoded image; raises ``InvalidImage`` or ``ImageTooLarge``."""
        ...

    def predict_decoded(self, pixels: Sequence[Any]) -> list[Prediction]: ...

    def warm_up(self, batch_sizes: Sequence[int]) -> None:
        """Run throw-away inferences so the first real request is not the slow one."""
        ...


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

    def check_writable(self) -> None:
        """Raise ``StoreAccessError`` now if ``publish`` would be refused (a read-only folder, a
        missing bucket, credentials without write access): before hours of training, not after."""
        ...

    def latest_version(self) -> str: ...

    def versions(self) -> list[str]: ...


# -- Launch control: ECS Fargate and what it needs around it ---------------------------------------
# ``ensure_*`` methods are get-or-create (idempotent); ``find*`` look resources up by tags, so a
# fresh shell can clean up; ``delete*`` return False when the resource was already gone.


class CloudAccount(Protocol):
    def account_id(self) -> str:
        """Whose credentials these are; called first, so missing credentials fail before any change."""
        ...


class LogGroups(Protocol):
    def ensure(self, name: str, retention_days: int, tags: Mapping[str, str]) -> Ensured: ...

    def find(self, name_prefix: str, tags: Mapping[str, str]) -> list[str]: ...

    def delete(self, name: str) -> bool: ...


class LogReader(Protocol):
    def exists(self, group: str) -> bool: ...

    def events(self, group: str, start_ms: int, limit: int = 1000) -> list[LogEvent]:
        """Events of all streams from ``start_ms`` on, oldest first, at most ``limit``."""
        ...


class TaskRoles(Protocol):
    """IAM roles for the tasks, each allowed only what it needs."""

    def ensure_execution_role(self, name: str, log_group: str, image_uri: str, tags: Mapping[str, str]) -> Ensured:
        """The role ECS uses to pull the image and write logs (id = ARN)."""
        ...

    def ensure_task_role(self, name: str, model: S3Model, tags: Mapping[str, str]) -> Ensured:
        """The role the app itself runs as: it may read the model's S3 objects and nothing else (id = ARN)."""
        ...

    def find(self, tags: Mapping[str, str]) -> list[str]: ...

    def delete(self, name: str) -> bool: ...


class Network(Protocol):
    def default_placement(self) -> Placement:
        """The default VPC and its public subnets; a clear error when the account has none."""
        ...

    def ensure_security_group(self, name: str, vpc_id: str, port: int, tags: Mapping[str, str]) -> Ensured:
        """Inbound TCP ``port`` only (id = group id)."""
        ...

    def find_security_groups(self, tags: Mapping[str, str]) -> list[tuple[str, str]]:
        """(group id, group name) of every group carrying ``tags``."""
        ...

    def delete_security_group(self, group_id: str) -> bool:
        """Raises ``ResourceInUse`` while network interfaces still use it."""
        ...

    def public_ip(self, network_interface_id: str) -> str | None: ...


class Deployer(Protocol):
    """ECS: the cluster, task definition revisions and the service."""

    def ensure_cluster(self, name: str, tags: Mapping[str, str]) -> Ensured: ...

    def register_task_definition(self, spec: TaskDefinitionSpec) -> TaskDefinitionRef:
        """A new revision only if ``spec`` differs from the latest active one."""
        ...

    def ensure_service(self, spec: ServiceSpec) -> str:
        """'created', 'updated' (new revision or count) or 'unchanged'."""
        ...

    def force_new_deployment(self, cluster: str, name: str) -> None:
        """Start a new rollout of the service's current settings: `up` retries a failed or stalled
        one this way, since nothing changed for ``ensure_service`` to update."""
        ...

    def service(self, cluster: str, name: str) -> ServiceState | None: ...

    def tasks(self, cluster: str, service: str, stopped: bool = False) -> list[TaskState]: ...

    def task_definition(self, arn: str) -> TaskDefinitionRef: ...

    def find_clusters(self, tags: Mapping[str, str]) -> list[str]: ...

    def find_services(self, cluster: str, tags: Mapping[str, str]) -> list[str]: ...

    def find_task_definitions(self, family: str, tags: Mapping[str, str]) -> list[TaskDefinitionRef]:
        """Active and inactive revisions of ``family`` carrying ``tags`` (an inactive one is what a
        `down` stopped between deregistering and deleting, or denied the delete, left)."""
        ...

    def delete_service(self, cluster: str, name: str) -> bool:
        """Scale to zero, then delete; does not wait for it to become inactive."""
        ...

    def deregister_task_definition(self, arn: str) -> bool:
        """Deregister and delete the revision; False when it was already gone."""
        ...

    def delete_cluster(self, name: str) -> bool: ...


class RepositoryRemover(Protocol):
    """ECR repositories in the current region, for `down --delete-repository`; the use case deletes
    only those whose tags say they belong to the deployment."""

    kind: str

    def find(self, tags: Mapping[str, str]) -> list[str]:
        """Names of the repositories carrying ``tags``."""
        ...

    def tags(self, name: str) -> dict[str, str] | None:
        """The repository's tags; None when there is no such repository."""
        ...

    def remove(self, name: str) -> bool:
        """Delete it with its images; False when it was already gone."""
        ...


@dataclass(frozen=True)
class HttpReply:
    status: int  # 0 when no HTTP answer came (refused, timed out); ``error`` says why
    body: bytes = b""
    seconds: float = 0.0
    error: str = ""


class EndpointProbe(Protocol):
    """Plain HTTP calls to a deployed (or local) API, for `smoke` and `status`."""

    def get(self, url: str, timeout: float) -> HttpReply: ...

    def post_file(self, url: str, field: str, filename: str, content: bytes, content_type: str,
                  timeout: float) -> HttpReply: ...


# -- Shipping: building the container image and publishing it --------------------------------------


class ImageBuilder(Protocol):
    """A container engine (docker, buildah, podman) that builds images and pushes them."""

    name: str

    def build(self, context: Path, tag: str, build_args: Mapping[str, str],
              staged_files: Mapping[str, Path] | None = None) -> str:
        """Build ``context``'s Dockerfile as ``tag`` (showing progress); return the image id.

        ``staged_files`` (name in the context -> source) are put into the context for this build
        only and removed afterwards, e.g. a proxy's CA for pip."""
        ...

    def push(self, image: str, destination: str, login: RegistryLogin) -> str:
        """Tag ``image`` as ``destination`` (registry/repository:tag), log in, push (showing
        progress); return the manifest digest. The login is not kept after the push."""
        ...


class ImageRegistry(Protocol):
    """Where images are published: ECR, or any registry standing in for it."""

    def ensure_repository(self, name: str, tags: Mapping[str, str], keep_images: int) -> Ensured:
        """Get or create the repository with its policies (id = registry/name URI); completes a
        repository that an earlier, interrupted run left without them."""
        ...

    def login(self) -> RegistryLogin: ...

    def find_digest(self, repository_uri: str, tag: str, login: RegistryLogin) -> str | None:
        """The manifest digest ``tag`` already names in the repository, None if it names none."""
        ...
