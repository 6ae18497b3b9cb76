"""Score a model file on every image of a labelled collection: the evaluate use case.

Scoring goes through the trainer's path (same decoding and normalisation as training and
serving), so the numbers are comparable with the model card's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eurosat_service.domain.dataset import LabeledImage, fingerprint, stratified_split
from eurosat_service.domain.errors import DatasetError
from eurosat_service.domain.evaluation import EvaluationReport
from eurosat_service.domain.ports import DatasetSource, TrainedModel, Trainer


@dataclass(frozen=True)
class ModelEvaluation:
    report: EvaluationReport
    # relative image path (``Forest/Forest_1.jpg``) -> class name -> probability; only on request
    per_image: dict[str, dict[str, float]] | None = None


def evaluate_model(
    source: DatasetSource, trainer: Trainer, model_file: Path, per_image: bool = False, views: int = 1,
    part: str | None = None,
) -> ModelEvaluation:
    """Score the model as served with ``views`` flips/rotations averaged per image (1: none), on
    every image of ``source`` or only on ``part`` (``test``...) of the model's own split."""
    model = trainer.load(model_file)
    class_names = model.class_names
    images = source.list_images()
    if part is not None:
        images = _split_part(model, images, part)
    if not images:
        raise DatasetError("no images to evaluate on")
    unknown = sorted({i.label for i in images} - set(class_names))
    if unknown:
        raise DatasetError(
            f"class folder(s) {', '.join(unknown)} are not classes of this model "
            f"(it knows {', '.join(class_names)}); remove or rename them"
        )
    probabilities = trainer.predict_probabilities(model, images, views)
    index = {name: i for i, name in enumerate(class_names)}
    predicted = [max(range(len(p)), key=p.__getitem__) for p in probabilities]
    report = EvaluationReport.from_labels(
        class_names,
        [index[i.label] for i in images],
        predicted,
        model_version=model.card.version if model.card else "",
        split=_split_name(model, images),
        views=views,
    )
    details = None
    if per_image:
        details = {i.path: dict(zip(class_names, p)) for i, p in zip(images, probabilities)}
    return ModelEvaluation(report, details)


def _split_part(model: TrainedModel, images: list[LabeledImage], part: str) -> list[LabeledImage]:
    """The model's own ``part``, drawn again from ``images`` with the card's seed and fractions,
    and used only if its hash is the card's: proof that these are the images it was held out on."""
    split = model.card.split if model.card else None
    if split is None:
        raise DatasetError("this model's card records no split: evaluate a folder of images instead")
    chosen = list(stratified_split(images, split.fractions, split.seed).parts()[part])
    if fingerprint(chosen) != split.sha256.get(part):
        raise DatasetError(f"the images in this folder are not the ones this model's split was drawn from "
                           f"(its {part} part does not match the card's sha256): use the training data folder")
    return chosen


def _split_name(model: TrainedModel, images: list[LabeledImage]) -> str:
    """The name of the model's own split part these images are exactly (``test``), else ``all``.

    Proves, from the card alone, whether an evaluation ran on the held-out images."""
    split = model.card.split if model.card else None
    if split is not None:
        digest = fingerprint(images)
        for name, recorded in split.sha256.items():
            if recorded == digest:
                return name
    return "all"
