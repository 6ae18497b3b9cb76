"""``python -m eurosat_service.entrypoints.train``: train, evaluate and publish a model."""

from __future__ import annotations

import argparse
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from eurosat_service.domain.errors import InvalidTrainingConfig, TrainingDiverged
from eurosat_service.domain.model_card import TrainingConfig
from eurosat_service.domain.ports import ArtifactStore
from eurosat_service.entrypoints import cli
from eurosat_service.entrypoints.container import Container, build_container
from eurosat_service.service_layer.training import TrainingRun, train_and_publish

DEFAULTS = TrainingConfig()
FLAGS = {"architecture": "--architecture", "epochs": "--epochs", "batch_size": "--batch-size",
         "learning_rate": "--lr", "weight_decay": "--weight-decay", "label_smoothing": "--label-smoothing",
         "seed": "--seed", "threads": "--threads", "pretrained": "--pretrained", "distill_weight": "--distill-weight"}
# The file TorchTrainer checkpoints each epoch to, in --checkpoint-dir (adapters/torch_trainer.py
# ``_checkpoint_path``; a test keeps the two equal)
CHECKPOINT_FILE = "last.pt"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m eurosat_service.entrypoints.train", description=__doc__)
    p.add_argument("--data-dir", type=Path, help="EuroSAT folder (holding 2750/ or EuroSAT.zip) or EuroSAT.zip "
                                                 "[EUROSAT_DATA_DIR]")
    p.add_argument("--download", action="store_true",
                   help="fetch the official EuroSAT.zip into --data-dir (or to it, if it names a .zip) first")
    p.add_argument("--artifact-uri", help="where to publish: a folder or s3://bucket/prefix [EUROSAT_ARTIFACT_URI]")
    p.add_argument("--checkpoint-dir", type=Path, help="per-epoch checkpoints [EUROSAT_CHECKPOINT_DIR]")
    p.add_argument("--work-dir", type=Path, help="where the run's files are written before publishing")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir")
    p.add_argument("--name", default="eurosat-resnet18", help="model name recorded in the card")
    p.add_argument("--architecture", default=DEFAULTS.architecture,
                   help="resnet18, resnet18-nopool or resnet18-nopool-w32")
    p.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument("--lr", type=float, default=DEFAULTS.learning_rate)
    p.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay)
    p.add_argument("--label-smoothing", type=float, default=DEFAULTS.label_smoothing)
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--threads", type=int, default=DEFAULTS.threads, help="torch CPU threads")
    p.add_argument("--pretrained", action="store_true", help="start from torchvision's ImageNet weights")
    p.add_argument("--distill-from", metavar="MODEL_URI", action="append", default=[],
                   help="distillation: start from this published model (same data, seed and architecture) "
                        "and learn its eight-view flip/rotation average beside the labels; repeat it to "
                        "learn the mean of several models' (the student starts from the first)")
    p.add_argument("--distill-weight", type=float, default=DEFAULTS.distill_weight,
                   help="share of the loss given to the teacher's probabilities (0-1)")
    p.add_argument("--no-progress", action="store_true", help="log epochs only, no progress bars")
    return p.parse_args(argv)


def training_config(args: argparse.Namespace) -> TrainingConfig:
    """The run's hyper-parameters, a bad one refused by its flag before any data is read."""
    try:
        config = TrainingConfig(
            architecture=args.architecture, epochs=args.epochs, batch_size=args.batch_size,
            learning_rate=args.lr, weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
            seed=args.seed, threads=args.threads, pretrained=args.pretrained, distill_weight=args.distill_weight,
        )
    except ValidationError as exc:
        raise InvalidTrainingConfig("; ".join(
            f"{FLAGS.get(str(e['loc'][0]), e['loc'][0])} {e['input']}: {e['msg'][:1].lower()}{e['msg'][1:]}"
            for e in exc.errors()
        )) from None
    check_architecture(config)
    return config


def check_architecture(config: TrainingConfig) -> None:
    """The trainer would only refuse these after decoding every image, minutes in."""
    from eurosat_service.adapters.resnet import ARCHITECTURES  # imports torch, which training needs anyway
    from eurosat_service.adapters.torch_trainer import PRETRAINABLE

    if config.architecture not in ARCHITECTURES:
        raise InvalidTrainingConfig(f"--architecture {config.architecture}: unknown; "
                                    f"use one of {', '.join(sorted(ARCHITECTURES))}")
    if config.pretrained and config.architecture not in PRETRAINABLE:
        raise InvalidTrainingConfig(f"--pretrained: no ImageNet weights for {config.architecture}; "
                                    f"use --architecture {' or '.join(sorted(PRETRAINABLE))}")


def check_run_folders(checkpoint_dir: Path, work_dir: Path) -> None:
    """The first checkpoint is written after an epoch, the work folder after training: check both
    can be written before either."""
    from eurosat_service.adapters.writable_folder import unwritable_reason

    for flag, folder in (("--checkpoint-dir", checkpoint_dir), ("--work-dir", work_dir)):
        if reason := unwritable_reason(Path(folder)):
            raise InvalidTrainingConfig(f"{flag} {folder}: {reason}")


def check_no_earlier_run(checkpoint_dir: Path, resume: bool) -> None:
    """Without --resume the trainer starts over and its first epoch replaces the checkpoint: an
    earlier run's epochs, maybe hours of them, would be lost without a word."""
    checkpoint = Path(checkpoint_dir) / CHECKPOINT_FILE
    if not resume and checkpoint.exists():
        raise InvalidTrainingConfig(f"{checkpoint} holds an earlier run's checkpoint: pass --resume to continue it, "
                                    "or remove it or choose another --checkpoint-dir to start over")


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (`kill`, a container or a spot instance stopping) ends a run the way Ctrl-C does:
    the last finished epoch's checkpoint is kept and the message says how to resume. (A job
    started in the background with ``&`` ignores Ctrl-C's SIGINT, so SIGTERM is its way out.)
    The previous handler comes back afterwards, for a caller that runs ``main`` in-process."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_training(
    args: argparse.Namespace, config: TrainingConfig, container: Container, store: ArtifactStore
) -> TrainingRun:
    """Fetch the data if asked, load the teachers, then train, evaluate and publish."""
    if args.download:
        from eurosat_service.adapters.eurosat_download import download_eurosat

        container.config.data_dir.from_value(download_eurosat(Path(container.config.data_dir())))
    trainer = container.trainer()
    trainer.show_progress = not args.no_progress
    teachers = [trainer.load(container.model_file_at(uri)) for uri in args.distill_from]
    return train_and_publish(
        source=container.dataset(),
        trainer=trainer,
        store=store,
        config=config,
        workdir=Path(container.config.work_dir()),
        render_confusion_matrix=container.confusion_matrix_renderer(),
        name=args.name,
        teachers=teachers,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cli.setup_logging()
    config = training_config(args)
    overrides = {k: v for k, v in {
        "data_dir": args.data_dir, "artifact_uri": args.artifact_uri,
        "checkpoint_dir": args.checkpoint_dir, "work_dir": args.work_dir,
    }.items() if v is not None}
    container = build_container(resume=args.resume, **overrides)
    store = container.artifact_store()
    store.check_writable()  # before a download or a teacher's S3 fetch, not only before training
    check_run_folders(container.config.checkpoint_dir(), container.config.work_dir())
    check_no_earlier_run(container.config.checkpoint_dir(), args.resume)
    with stop_on_sigterm():
        try:
            run = run_training(args, config, container, store)
        except TrainingDiverged as exc:
            # its checkpoint holds the diverged epochs, which neither --resume nor a new run may reuse
            checkpoint = Path(container.config.checkpoint_dir()) / CHECKPOINT_FILE
            if checkpoint.exists():
                raise TrainingDiverged(f"{exc}, once {checkpoint} (the diverged epochs) is removed") from None
            raise
    print(json.dumps({
        "version": run.card.version, "artifact": run.published.uri, "sha256": run.published.sha256,
        "test_accuracy": run.report.accuracy, "test_macro_f1": run.report.macro_f1,
        "split": run.card.split.counts if run.card.split else {}, "training_seconds": run.card.training_seconds,
    }, indent=2))
    return 0


if __name__ == "__main__":
    cli.run(main)
