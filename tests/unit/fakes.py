"""In-memory fakes for the ports: state in dicts, no I/O beyond what a test hands them.

One fake per port; append new ones at the end (one section per port).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from eurosat_service.domain.dataset import LabeledImage
from eurosat_service.domain.errors import (
    ArtifactIntegrityError,
    ArtifactNotFound,
    ImageTooLarge,
    InvalidImage,
    StoreAccessError,
    UnsupportedImageFormat,
)
from eurosat_service.domain.model_card import EUROSAT_NORMALIZATION, ModelCard, TrainingConfig
from eurosat_service.domain.ports import PublishedArtifact, TrainedModel
from eurosat_service.domain.prediction import Prediction


def make_card(class_names: Sequence[str] = ("Forest", "River", "SeaLake"), version: str = "v1") -> ModelCard:
    return ModelCard(name="fake", version=version, architecture="fake-net", class_names=tuple(class_names),
                     input_size=64, normalization=EUROSAT_NORMALIZATION, weights_sha256="0" * 64)


# -- DatasetSource ------------------------------------------------------------------------------
class FakeDatasetSource:
    """Images keyed by ``LabeledImage``; the bytes are the path, so a fake trainer can tell them apart."""

    def __init__(self, images: Sequence[LabeledImage]) -> None:
        self.images: dict[LabeledImage, bytes] = {i: i.path.encode() for i in images}
        self.reads: list[LabeledImage] = []

    @classmethod
    def with_counts(cls, counts: Mapping[str, int]) -> FakeDatasetSource:
        return cls([LabeledImage(f"{label}/{label}_{n}.jpg", label)
                    for label, count in counts.items() for n in range(1, count + 1)])

    def list_images(self) -> list[LabeledImage]:
        return sorted(self.images)

    def read(self, image: LabeledImage) -> bytes:
        self.reads.append(image)
        return self.images[image]


# -- Trainer ------------------------------------------------------------------------------------
class FakeTrainer:
    """'Learns' nothing: predicts each image's true label (one-hot) unless ``wrong`` names another
    label for its path. ``save``/``load`` round-trip the card through a JSON file."""

    def __init__(self, wrong: Mapping[str, str] | None = None) -> None:
        self.wrong = dict(wrong or {})
        self.trained_on: list[tuple[list[LabeledImage], list[LabeledImage]]] = []
        self.teachers: list[list[TrainedModel]] = []  # of each train call
        self.predicted: list[LabeledImage] = []
        self.views: int | None = None  # of the last predict_probabilities call

    def train(self, train, val, class_names, config: TrainingConfig, teachers=()) -> TrainedModel:
        self.trained_on.append((list(train), list(val)))
        self.teachers.append(list(teachers))
        history = [{"epoch": e + 1, "val_accuracy": 0.5 + 0.1 * e} for e in range(config.epochs)]
        # the "weights" are what it predicts, so two fakes that answer differently differ in sha256
        return TrainedModel({"wrong": self.wrong}, config.architecture, tuple(class_names), history, 1.5)

    def predict_probabilities(
        self, model: TrainedModel, images: Sequence[LabeledImage], views: int = 1
    ) -> list[list[float]]:
        self.predicted += images
        self.views = views
        out = []
        for image in images:
            answer = self.wrong.get(image.path, image.label)
            out.append([1.0 if name == answer else 0.0 for name in model.class_names])
        return out

    def save(self, model: TrainedModel, card: ModelCard, path: Path) -> ModelCard:
        weights = json.dumps(model.network, sort_keys=True).encode()
        card = card.model_copy(update={"weights_sha256": hashlib.sha256(weights).hexdigest()})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"card": card.model_dump_json(), "network": model.network}))
        return card

    def load(self, path: Path) -> TrainedModel:
        payload = json.loads(Path(path).read_text())
        card = ModelCard.model_validate_json(payload["card"])
        return TrainedModel(payload["network"], card.architecture, card.class_names, [], 0.0, card)


# -- ArtifactStore ------------------------------------------------------------------------------
class FakeArtifactStore:
    """Objects in a dict keyed ``<version>/<name>``; ``writes`` records the order of every write
    (``LATEST`` included). ``fail_on`` names a file whose upload fails, as a broken network would."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.digests: dict[str, str] = {}
        self.latest: str | None = None
        self.writes: list[str] = []
        self.fail_on = fail_on

    def publish(self, version: str, files: Mapping[str, Path], primary: str = "model.pt") -> PublishedArtifact:
        for name, path in files.items():
            if name == self.fail_on:
                raise StoreAccessError(f"upload of {name} failed")
            key = f"{version}/{name}"
            self.objects[key] = Path(path).read_bytes()
            self.digests[key] = hashlib.sha256(self.objects[key]).hexdigest()
            self.writes.append(key)
        self.latest = version
        self.writes.append("LATEST")
        return PublishedArtifact(f"fake://{version}/{primary}", version, self.digests.get(f"{version}/{primary}", ""))

    def fetch(self, destination: Path, version: str | None = None, name: str = "model.pt") -> Path:
        key = f"{version or self.latest_version()}/{name}"
        if key not in self.objects:
            raise ArtifactNotFound(f"fake store has no {key}")
        if hashlib.sha256(self.objects[key]).hexdigest() != self.digests[key]:
            raise ArtifactIntegrityError(f"{key} does not match its sha256")
        target = Path(destination) / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.objects[key])
        return target

    def check_writable(self) -> None:
        """A dict is always writable; subclass to play a refusing store."""

    def latest_version(self) -> str:
        if self.latest is None:
            raise ArtifactNotFound("fake store has no LATEST")
        return self.latest

    def versions(self) -> list[str]:
        return sorted({key.split("/")[0] for key in self.objects})


# -- Classifier ---------------------------------------------------------------------------------
class FakeClassifier:
    """Answers ``answers[image bytes]`` (a label) with confidence 0.9, else the first class.

    Bytes starting with ``NOTANIMAGE``, ``CORRUPT`` or ``BOMB`` fail to decode the way a text
    file, a truncated JPEG and a decompression bomb do; ``delay`` (seconds) slows every batch.
    """

    def __init__(
        self, card: ModelCard | None = None, answers: Mapping[bytes, str] | None = None, delay: float = 0.0
    ) -> None:
        self._card = card or make_card()
        self.answers = dict(answers or {})
        self.delay = delay
        self.calls: list[int] = []  # batch sizes seen
        self.warmed_up: list[int] = []  # batch sizes warmed up with

    @property
    def card(self) -> ModelCard:
        return self._card

    def predict(self, images: Sequence[bytes]) -> list[Prediction]:
        return self.predict_decoded([self.decode(image) for image in images])

    def decode(self, image: bytes) -> bytes:
        if image.startswith(b"NOTANIMAGE"):
            raise UnsupportedImageFormat("not a recognised image format")
        if image.startswith(b"CORRUPT"):
            raise InvalidImage("image could not be decoded: image file is truncated")
        if image.startswith(b"BOMB"):
            raise ImageTooLarge("image is 30000x30000 pixels; the limit is 16777216 pixels")
        return image

    def predict_decoded(self, pixels: Sequence[bytes]) -> list[Prediction]:
        if self.delay:
            time.sleep(self.delay)
        self.calls.append(len(pixels))
        names = self._card.class_names
        out = []
        for data in pixels:
            best = names.index(self.answers.get(data, names[0]))
            rest = 0.1 / (len(names) - 1) if len(names) > 1 else 0.0
            probabilities = [0.9 if i == best else rest for i in range(len(names))]
            out.append(Prediction.from_probabilities(names, probabilities, self._card.version))
        return out

    def warm_up(self, batch_sizes: Sequence[int]) -> None:
        self.warmed_up += batch_sizes


# -- Launch control: CloudAccount, LogGroups + LogReader, TaskRoles, Network, Deployer, ... -------
# Each keeps its resources in dicts and writes "<verb> <resource>" to a shared ``journal`` list,
# so tests can check the order `up` creates in and `down` deletes in.
from eurosat_service.domain.deployment import (  # noqa: E402
    Ensured,
    LogEvent,
    Placement,
    ServiceSpec,
    ServiceState,
    TaskDefinitionRef,
    TaskDefinitionSpec,
    TaskState,
    carries,
)
from eurosat_service.domain.errors import CloudAccessError, DeploymentError, ResourceInUse  # noqa: E402
from eurosat_service.domain.ports import HttpReply  # noqa: E402


class FakeCloudAccount:
    def __init__(self, account: str | None = "123456789012") -> None:
        self.account = account

    def account_id(self) -> str:
        if self.account is None:
            raise CloudAccessError("no AWS credentials found")
        return self.account


class FakeLogGroups:
    """Both ``LogGroups`` and ``LogReader``: ``events`` holds each group's ``LogEvent``s."""

    def __init__(self, journal: list[str]) -> None:
        self.journal = journal
        self.groups: dict[str, dict] = {}
        self.events_by_group: dict[str, list[LogEvent]] = {}

    def ensure(self, name, retention_days, tags) -> Ensured:
        created = name not in self.groups
        if created:
            self.journal.append(f"create log group {name}")
        self.groups[name] = {"retention": retention_days, "tags": dict(tags)}
        return Ensured(name, created)

    def find(self, name_prefix, tags) -> list[str]:
        return [n for n, g in self.groups.items() if n.startswith(name_prefix) and carries(g["tags"], tags)]

    def delete(self, name) -> bool:
        self.journal.append(f"delete log group {name}")
        return self.groups.pop(name, None) is not None

    def exists(self, group) -> bool:
        return group in self.groups

    def events(self, group, start_ms, limit=1000) -> list[LogEvent]:
        found = [e for e in self.events_by_group.get(group, []) if e.timestamp_ms >= start_ms]
        return sorted(found, key=lambda e: e.timestamp_ms)[-limit:]


class FakeTaskRoles:
    def __init__(self, journal: list[str]) -> None:
        self.journal = journal
        self.roles: dict[str, dict] = {}

    def ensure_execution_role(self, name, log_group, image_uri, tags) -> Ensured:
        return self._ensure(name, {"log_group": log_group, "image": image_uri}, tags)

    def ensure_task_role(self, name, model, tags) -> Ensured:
        return self._ensure(name, {"model": model}, tags)

    def _ensure(self, name, policy, tags) -> Ensured:
        created = name not in self.roles
        if created:
            self.journal.append(f"create role {name}")
        self.roles[name] = {"policy": policy, "tags": dict(tags)}
        return Ensured(f"arn:aws:iam::123456789012:role/eurosat-service/{name}", created)

    def find(self, tags) -> list[str]:
        return [n for n, r in self.roles.items() if carries(r["tags"], tags)]

    def delete(self, name) -> bool:
        self.journal.append(f"delete role {name}")
        return self.roles.pop(name, None) is not None


class FakeNetwork:
    """``busy`` makes the next N security group deletions fail as if ENIs still used it."""

    def __init__(self, journal: list[str], default_vpc: bool = True) -> None:
        self.journal = journal
        self.default_vpc = default_vpc
        self.groups: dict[str, dict] = {}
        self.public_ips: dict[str, str] = {}  # network interface id -> IP
        self.busy = 0

    def default_placement(self) -> Placement:
        if not self.default_vpc:
            raise DeploymentError("this region has no default VPC")
        return Placement("vpc-1", ("subnet-a", "subnet-b"))

    def ensure_security_group(self, name, vpc_id, port, tags) -> Ensured:
        for group_id, group in self.groups.items():
            if group["name"] == name:
                return Ensured(group_id, False)
        group_id = f"sg-{len(self.groups) + 1}"
        self.groups[group_id] = {"name": name, "vpc": vpc_id, "ingress": [port], "tags": dict(tags)}
        self.journal.append(f"create security group {name}")
        return Ensured(group_id, True)

    def find_security_groups(self, tags) -> list[tuple[str, str]]:
        return [(gid, g["name"]) for gid, g in self.groups.items() if carries(g["tags"], tags)]

    def delete_security_group(self, group_id) -> bool:
        if self.busy:
            self.busy -= 1
            raise ResourceInUse(f"{group_id} in use")
        self.journal.append(f"delete security group {group_id}")
        return self.groups.pop(group_id, None) is not None

    def public_ip(self, network_interface_id) -> str | None:
        return self.public_ips.get(network_interface_id)


class FakeDeployer:
    """ECS in dicts. ``script`` (ServiceStates) replaces what ``service`` reports, one per call
    (the last repeats), to play a rollout; ``running`` / ``stopped`` are the tasks to report;
    ``forced`` counts forced new deployments."""

    def __init__(self, journal: list[str]) -> None:
        self.journal = journal
        self.clusters: dict[str, dict] = {}
        self.revisions: dict[str, list[dict]] = {}  # family -> [{"spec", "active", "arn"}]
        self.services: dict[tuple[str, str], dict] = {}
        self.script: list[ServiceState] = []
        self.running: list[TaskState] = []
        self.stopped: list[TaskState] = []
        self.forced = 0

    def ensure_cluster(self, name, tags) -> Ensured:
        created = name not in self.clusters
        if created:
            self.clusters[name] = {"tags": dict(tags)}
            self.journal.append(f"create cluster {name}")
        return Ensured(f"arn:cluster/{name}", created)

    def register_task_definition(self, spec: TaskDefinitionSpec) -> TaskDefinitionRef:
        revisions = self.revisions.setdefault(spec.family, [])
        active = [r for r in revisions if r["active"]]
        if active and active[-1]["spec"] == spec:
            return self._ref(active[-1], created=False)
        revision = {"spec": spec, "active": True, "revision": len(revisions) + 1,
                    "arn": f"arn:task-definition/{spec.family}:{len(revisions) + 1}"}
        revisions.append(revision)
        self.journal.append(f"register task definition {spec.family}:{revision['revision']}")
        return self._ref(revision, created=True)

    def ensure_service(self, spec: ServiceSpec) -> str:
        key = (spec.cluster, spec.name)
        current = self.services.get(key)
        if current and current["status"] == "ACTIVE":
            if current["task_definition"] == spec.task_definition_arn and current["desired"] == spec.desired_count:
                return "unchanged"
            current.update(task_definition=spec.task_definition_arn, desired=spec.desired_count)
            self.journal.append(f"update service {spec.name}")
            return "updated"
        self.services[key] = {"status": "ACTIVE", "task_definition": spec.task_definition_arn,
                              "desired": spec.desired_count, "tags": dict(spec.tags), "spec": spec}
        self.journal.append(f"create service {spec.name}")
        return "created"

    def force_new_deployment(self, cluster, name) -> None:
        self.forced += 1
        self.journal.append(f"force new deployment {name}")

    def service(self, cluster, name) -> ServiceState | None:
        if self.script:
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]
        current = self.services.get((cluster, name))
        if current is None:
            return None
        running = current["desired"] if current["status"] == "ACTIVE" else 0
        return ServiceState(name, current["status"], current["desired"], running, 0, current["task_definition"],
                            "COMPLETED")

    def tasks(self, cluster, service, stopped=False) -> list[TaskState]:
        return list(self.stopped if stopped else self.running)

    def task_definition(self, arn) -> TaskDefinitionRef:
        for revisions in self.revisions.values():
            for revision in revisions:
                if revision["arn"] == arn:
                    return self._ref(revision, created=False)
        raise DeploymentError(f"no task definition {arn}")

    def find_clusters(self, tags) -> list[str]:
        return [n for n, c in self.clusters.items() if carries(c["tags"], tags)]

    def find_services(self, cluster, tags) -> list[str]:
        return [name for (c, name), s in self.services.items()
                if c == cluster and s["status"] != "INACTIVE" and carries(s["tags"], tags)]

    def find_task_definitions(self, family, tags) -> list[TaskDefinitionRef]:
        return [self._ref(r, created=False) for r in self.revisions.get(family, [])
                if r["active"] and carries(r["spec"].tags, tags)]

    def delete_service(self, cluster, name) -> bool:
        current = self.services.get((cluster, name))
        if current is None or current["status"] == "INACTIVE":
            return False
        current.update(status="INACTIVE", desired=0)
        self.journal.append(f"delete service {name}")
        return True

    def deregister_task_definition(self, arn) -> bool:
        for revisions in self.revisions.values():
            for revision in revisions:
                if revision["arn"] == arn and revision["active"]:
                    revision["active"] = False
                    self.journal.append(f"deregister {arn}")
                    return True
        return False

    def delete_cluster(self, name) -> bool:
        if any(c == name and s["status"] != "INACTIVE" for (c, _), s in self.services.items()):
            raise ResourceInUse(f"cluster {name} still has services")
        self.journal.append(f"delete cluster {name}")
        return self.clusters.pop(name, None) is not None

    @staticmethod
    def _ref(revision: dict, created: bool) -> TaskDefinitionRef:
        spec = revision["spec"]
        return TaskDefinitionRef(revision["arn"], revision["revision"], created, spec.image_uri,
                                 dict(spec.environment))


class FakeRepositoryRemover:
    """A ``RepositoryRemover`` over ``repositories`` (name -> tags) of one region."""

    kind = "ECR repository"

    def __init__(self, repositories: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.repositories = {name: dict(tags) for name, tags in (repositories or {}).items()}

    def find(self, tags) -> list[str]:
        return [name for name, found in self.repositories.items() if carries(found, tags)]

    def tags(self, name) -> dict[str, str] | None:
        return self.repositories.get(name)

    def remove(self, name) -> bool:
        return self.repositories.pop(name, None) is not None


class FakeEndpointProbe:
    """Answers from ``replies[(method, path)]``: a list played in order (the last repeats)."""

    def __init__(self, replies: Mapping[tuple[str, str], list[HttpReply]]) -> None:
        self.replies = {k: list(v) for k, v in replies.items()}
        self.calls: list[tuple[str, str]] = []

    def get(self, url, timeout) -> HttpReply:
        return self._answer("GET", url)

    def post_file(self, url, field, filename, content, content_type, timeout) -> HttpReply:
        return self._answer("POST", url)

    def _answer(self, method: str, url: str) -> HttpReply:
        path = "/" + url.split("://", 1)[-1].split("/", 1)[-1]
        self.calls.append((method, path))
        queue = self.replies.get((method, path))
        if not queue:
            return HttpReply(0, error="connection refused")
        return queue.pop(0) if len(queue) > 1 else queue[0]


# -- Shipping container: ImageBuilder, ImageRegistry ----------------------------------------------
class FakeImageBuilder:
    """Builds record their arguments and the staged files' bytes; pushes land in a ``FakeImageRegistry``."""

    name = "fake"

    def __init__(self, registry: FakeImageRegistry, fail_build: str | None = None) -> None:
        self.registry = registry
        self.fail_build = fail_build
        self.builds: list[dict] = []
        self.images: dict[str, str] = {}  # local tag -> image id

    def build(self, context, tag, build_args, staged_files=None) -> str:
        from eurosat_service.domain.errors import BuildError

        staged = {name: Path(source).read_bytes() for name, source in (staged_files or {}).items()}
        self.builds.append({"context": context, "tag": tag, "args": dict(build_args), "staged": staged})
        if self.fail_build:
            raise BuildError(self.fail_build)
        self.images[tag] = "sha256:" + hashlib.sha256(f"{tag}{sorted(build_args.items())}".encode()).hexdigest()
        return self.images[tag]

    def push(self, image, destination, login) -> str:
        from eurosat_service.domain.errors import BuildError

        if login.password != self.registry.password:
            raise BuildError(f"docker login to {login.registry} failed (expired or wrong registry credentials)")
        repository, _, tag = destination.rpartition(":")
        digest = "sha256:" + hashlib.sha256(self.images[image].encode()).hexdigest()
        self.registry.pushed.setdefault(repository, {})[tag] = digest
        return digest


class FakeImageRegistry:
    """Repositories and their tags in dicts; ``host`` plays the registry's address."""

    def __init__(self, host: str = "123456789012.dkr.ecr.us-east-1.amazonaws.com", password: str = "token") -> None:
        self.host = host
        self.password = password
        self.repositories: dict[str, dict] = {}  # name -> {"tags": ..., "keep": ...}
        self.pushed: dict[str, dict[str, str]] = {}  # repository URI -> tag -> digest

    def ensure_repository(self, name, tags, keep_images):
        from eurosat_service.domain.deployment import Ensured

        created = name not in self.repositories
        self.repositories.setdefault(name, {"tags": dict(tags)})["keep"] = keep_images
        return Ensured(f"{self.host}/{name}", created)

    def login(self):
        from eurosat_service.domain.container_image import RegistryLogin

        return RegistryLogin(self.host, "AWS", self.password)

    def find_digest(self, repository_uri, tag, login):
        return self.pushed.get(repository_uri, {}).get(tag)
