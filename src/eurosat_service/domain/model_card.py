"""Everything needed to use a model correctly, stored inside the model file and beside it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from eurosat_service.domain.dataset import SplitSummary


class Normalization(BaseModel):
    model_config = ConfigDict(frozen=True)

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# Mean/std of EuroSAT RGB over all pixels on a 0-1 scale (the widely quoted statistics).
EUROSAT_NORMALIZATION = Normalization(mean=(0.3444, 0.3803, 0.4078), std=(0.2027, 0.1369, 0.1156))


# torch.manual_seed takes a 64-bit seed; a larger one fails with an overflow, after the data is read.
MAX_SEED = 2**64 - 1
# Far beyond any useful count, yet below the threads a process may start ("can't start new thread").
MAX_THREADS = 256


class ModelRef(BaseModel):
    """Which published model: its version and the sha256 of its weights."""

    model_config = ConfigDict(frozen=True)

    version: str
    weights_sha256: str


class TrainingConfig(BaseModel):
    """Hyper-parameters of a run; recorded in the card so a run can be repeated."""

    # inf or nan would train to nan weights, and JSON writes them as null: a card that cannot be read back
    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    architecture: str = "resnet18-nopool-w32"
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=128, ge=1)
    learning_rate: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=5e-2, ge=0)
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    warmup_epochs: float = Field(default=1.0, ge=0)
    augmentation: str = "dihedral+crop+color"
    seed: int = Field(default=42, ge=0, le=MAX_SEED)
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    threads: int = Field(default=2, ge=1, le=MAX_THREADS)
    pretrained: bool = False
    # Distillation: the run starts from this published model's weights and learns from its
    # eight-view (dihedral) average as well as from the labels; see ``service_layer/training``.
    teacher_version: str | None = None
    teacher_weights_sha256: str | None = None
    # An ensemble of teachers: these models' eight-view averages join the first teacher's (mean)
    co_teachers: tuple[ModelRef, ...] = ()
    distill_weight: float = Field(default=0.5, ge=0, le=1)


class ModelCard(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    architecture: str
    class_names: tuple[str, ...]
    input_size: int
    normalization: Normalization
    weights_sha256: str
    metrics: dict[str, float] = Field(default_factory=dict)
    split: SplitSummary | None = None
    training: TrainingConfig | None = None
    training_seconds: float | None = None
    library_versions: dict[str, str] = Field(default_factory=dict)
    created_at: str = ""
