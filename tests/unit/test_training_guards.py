"""Training flags no trainer can use are refused by the config; a diverged run is never published."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from eurosat_service.domain.errors import TrainingDiverged
from eurosat_service.domain.model_card import MAX_SEED, MAX_THREADS, TrainingConfig
from eurosat_service.domain.ports import TrainedModel
from eurosat_service.service_layer.training import train_and_publish
from tests.unit.fakes import FakeArtifactStore, FakeDatasetSource, FakeTrainer

FLOAT_FIELDS = [name for name, field in TrainingConfig.model_fields.items() if field.annotation is float]


def test_every_float_field_is_found():
    assert {"learning_rate", "weight_decay", "label_smoothing", "warmup_epochs", "distill_weight"} <= set(FLOAT_FIELDS)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_a_non_finite_float_is_refused(field, value):
    with pytest.raises(ValidationError, match="finite number"):
        TrainingConfig(**{field: value})


def test_non_finite_split_fractions_are_refused():
    with pytest.raises(ValidationError, match="finite number"):
        TrainingConfig(split_fractions=(math.nan, 0.1, 0.1))


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 2**64])
def test_a_seed_torch_cannot_take_is_refused(seed):
    with pytest.raises(ValidationError):
        TrainingConfig(seed=seed)


@pytest.mark.parametrize("seed", [0, 2**32, MAX_SEED])
def test_every_seed_torch_takes_is_accepted(seed):
    import torch

    torch.Generator().manual_seed(TrainingConfig(seed=seed).seed)


def test_threads_are_capped():
    assert TrainingConfig(threads=MAX_THREADS).threads == MAX_THREADS
    with pytest.raises(ValidationError, match=f"less than or equal to {MAX_THREADS}"):
        TrainingConfig(threads=100_000)


class DivergingTrainer(FakeTrainer):
    """A fake whose loss becomes nan at ``epoch`` (its validation metrics too, like a real network's)."""

    def __init__(self, epoch: int, key: str = "train_loss") -> None:
        super().__init__()
        self.epoch, self.key = epoch, key

    def train(self, train, val, class_names, config, teachers=()) -> TrainedModel:
        model = super().train(train, val, class_names, config, teachers)
        history = [{"epoch": h["epoch"], "train_loss": 1.0, "val_loss": 1.0, **h} for h in model.history]
        for record in history[self.epoch - 1:]:
            record[self.key] = math.nan
        return TrainedModel(model.network, model.architecture, model.class_names, history, model.seconds)


@pytest.mark.parametrize("key", ["train_loss", "val_loss", "val_accuracy"])
def test_a_diverged_run_is_neither_saved_nor_published(key, tmp_path):
    store, trainer = FakeArtifactStore(), DivergingTrainer(epoch=2, key=key)
    with pytest.raises(TrainingDiverged) as refused:
        train_and_publish(
            source=FakeDatasetSource.with_counts({"Forest": 10, "River": 10}), trainer=trainer, store=store,
            config=TrainingConfig(epochs=3, learning_rate=1e30, threads=1), workdir=tmp_path / "work",
            render_confusion_matrix=lambda report, path: pytest.fail("rendered a diverged run's report"),
            version="v1",
        )
    assert str(refused.value) == (f"training diverged at epoch 2 ({key}=nan); nothing was published: "
                                  "try a lower --lr than 1e+30")
    assert store.writes == [] and store.latest is None and not (tmp_path / "work").exists()
    assert trainer.predicted == []  # not even evaluated
