"""Train, evaluate on the held-out split, and publish: the model factory's use case."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from eurosat_service.domain.dataset import MIN_IMAGES_PER_CLASS, DataSplit, LabeledImage, stratified_split
from eurosat_service.domain.errors import DatasetError, EurosatError, TrainingDiverged
from eurosat_service.domain.evaluation import EvaluationReport
from eurosat_service.domain.land_cover import EUROSAT_CLASSES
from eurosat_service.domain.model_card import EUROSAT_NORMALIZATION, ModelCard, ModelRef, TrainingConfig
from eurosat_service.domain.ports import ArtifactStore, DatasetSource, PublishedArtifact, TrainedModel, Trainer

log = logging.getLogger(__name__)

LIBRARIES = ("torch", "torchvision", "pillow", "eurosat-service")


@dataclass(frozen=True)
class TrainingRun:
    card: ModelCard
    report: EvaluationReport
    published: PublishedArtifact
    split: DataSplit


def class_names_of(labels: set[str]) -> tuple[str, ...]:
    """EuroSAT's canonical order when the labels are EuroSAT's, else alphabetical."""
    if labels <= set(EUROSAT_CLASSES):
        return tuple(c for c in EUROSAT_CLASSES if c in labels)
    return tuple(sorted(labels))


def library_versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def new_version(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("v%Y%m%d-%H%M%S")


def train_and_publish(
    source: DatasetSource,
    trainer: Trainer,
    store: ArtifactStore,
    config: TrainingConfig,
    workdir: Path,
    render_confusion_matrix: Callable[[EvaluationReport, Path], None],
    name: str = "eurosat-resnet18",
    version: str | None = None,
    teachers: Sequence[TrainedModel] = (),
) -> TrainingRun:
    # A missing bucket, refused credentials or a read-only folder fail now, not after hours of training
    store.check_writable()
    images = source.list_images()
    class_names = class_names_of({i.label for i in images})
    if len(class_names) < 2:
        raise DatasetError(f"need images of at least two classes, found {list(class_names)}")
    split = stratified_split(images, config.split_fractions, config.seed)
    check_every_class_is_held_out(split, images)
    log.info("split (seed %d): %s", config.seed, split.summary().counts)
    if teachers:
        config = with_teachers(config, teachers, split)

    model = trainer.train(split.train, split.val, class_names, config, teachers=teachers)
    check_converged(model.history, config)
    report = evaluate(trainer, model, split, class_names)
    log.info("test accuracy %.4f, macro-F1 %.4f on %d images", report.accuracy, report.macro_f1, report.num_images)

    version = version or new_version()
    val_accuracy = model.history[-1]["val_accuracy"] if model.history else float("nan")
    card = ModelCard(
        name=name,
        version=version,
        architecture=config.architecture,
        class_names=class_names,
        input_size=64,
        normalization=EUROSAT_NORMALIZATION,
        weights_sha256="",
        metrics={"test_accuracy": report.accuracy, "test_macro_f1": report.macro_f1,
                 "best_val_accuracy": max((h["val_accuracy"] for h in model.history), default=val_accuracy)},
        split=split.summary(),
        training=config,
        # a distilled model's include its teachers'
        training_seconds=round(model.seconds + sum(t.seconds for t in teachers), 1),
        library_versions=library_versions(),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    out = workdir / version
    out.mkdir(parents=True, exist_ok=True)
    card = trainer.save(model, card, out / "model.pt")
    report = report.model_copy(update={"model_version": version})
    files = {
        "model.pt": out / "model.pt",
        "model_card.json": _write(out / "model_card.json", card.model_dump_json(indent=2)),
        "evaluation.json": _write(out / "evaluation.json", report.model_dump_json(indent=2)),
        "confusion_matrix.json": _write(out / "confusion_matrix.json", json.dumps(
            {"class_names": report.class_names, "matrix": report.confusion_matrix}, indent=2)),
        "split.json": _write(out / "split.json", json.dumps(
            {"summary": split.summary().model_dump(), "files": split.listing()}, indent=1)),
        "history.json": _write(out / "history.json", json.dumps(model.history, indent=2)),
    }
    render_confusion_matrix(report, out / "confusion_matrix.png")
    files["confusion_matrix.png"] = out / "confusion_matrix.png"
    published = store.publish(version, files)
    return TrainingRun(card, report, published, split)


def check_every_class_is_held_out(split: DataSplit, images: list[LabeledImage]) -> None:
    """Refuse, before training, a split whose validation or test part lacks a class: the model
    would be trained on it but never scored (and with no test image at all, not evaluable)."""
    missing = split.missing_classes()
    if not missing:
        return
    for part, fraction in zip(("train", "val", "test"), split.fractions):
        if part in missing and fraction == 0:
            raise DatasetError(f"the split fractions {split.fractions} give the {part} part no images")
    counts = {label: sum(i.label == label for i in images) for names in missing.values() for label in names}
    too_small = ", ".join(f"{label} ({n} image{'s' * (n != 1)})" for label, n in sorted(counts.items()))
    raise DatasetError(f"class(es) {too_small} have too few images to hold any out for "
                       f"{' and '.join(missing)}: each class needs at least {MIN_IMAGES_PER_CLASS}; "
                       "add images or remove the class folder")


def check_converged(history: Sequence[dict], config: TrainingConfig) -> None:
    """Refuse, before anything is saved or published, a run whose loss or validation metrics went
    inf or nan: published, it would become the latest model and every prediction would fail."""
    for record in history:
        bad = ", ".join(f"{key}={value}" for key, value in record.items()
                        if isinstance(value, float) and not math.isfinite(value))
        if bad:
            raise TrainingDiverged(f"training diverged at epoch {record.get('epoch', '?')} ({bad}); nothing was "
                                   f"published: try a lower --lr than {config.learning_rate:g}")


def with_teachers(config: TrainingConfig, teachers: Sequence[TrainedModel], split: DataSplit) -> TrainingConfig:
    """Record the teachers in the run's configuration, once each is proven safe to learn from.

    The student starts from the first teacher's weights and learns every teacher's answers on
    the training images, so each must have been trained on this very split: had one seen this
    run's validation or test images, the student would inherit that knowledge and its held-out
    scores would be worth nothing."""
    refs = [_proven_teacher(teacher, split) for teacher in teachers]
    if len({ref.weights_sha256 for ref in refs}) < len(refs):
        raise EurosatError("the same teacher is given twice: give each --distill-from model once")
    first = teachers[0].card
    if first.architecture != config.architecture:
        raise EurosatError(f"the student starts from the first teacher's weights: use --architecture "
                           f"{first.architecture} (not {config.architecture})")
    if config.pretrained:
        raise EurosatError("--pretrained and a teacher both choose the starting weights: pick one")
    return config.model_copy(update={"teacher_version": refs[0].version, "teacher_weights_sha256":
                                     refs[0].weights_sha256, "co_teachers": tuple(refs[1:])})


def _proven_teacher(teacher: TrainedModel, split: DataSplit) -> ModelRef:
    card = teacher.card
    if card is None or card.split is None:
        raise DatasetError("the teacher model's card records no data split, so it cannot be proven "
                           "never to have seen this run's test images")
    ours = split.summary()
    if card.split.sha256 != ours.sha256:  # the hashes cover every image path, so classes too
        raise DatasetError(
            f"the teacher {card.version} was trained on another split: its image lists differ from "
            f"this run's (teacher: seed {card.split.seed}, {card.split.counts}; this run: seed "
            f"{ours.seed}, {ours.counts}); distil only from a model of the same data and --seed"
        )
    return ModelRef(version=card.version, weights_sha256=card.weights_sha256)


def evaluate(trainer: Trainer, model, split: DataSplit, class_names: tuple[str, ...]) -> EvaluationReport:
    index = {n: i for i, n in enumerate(class_names)}
    probabilities = trainer.predict_probabilities(model, split.test)
    predicted = [max(range(len(p)), key=p.__getitem__) for p in probabilities]
    return EvaluationReport.from_labels(class_names, [index[i.label] for i in split.test], predicted, split="test")


def _write(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    return path
