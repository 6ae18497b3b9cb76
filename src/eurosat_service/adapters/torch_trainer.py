"""Trains and scores the ResNet on the CPU, with per-epoch checkpoints and resume."""

from __future__ import annotations

import errno
import logging
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from eurosat_service.adapters.augmentation import augment, average_views, stack_views
from eurosat_service.adapters.model_file import load_model, partial_file, save_model, save_whole
from eurosat_service.adapters.preprocessing import decode_rgb, normalize
from eurosat_service.adapters.resnet import ResNet, build_resnet
from eurosat_service.domain.dataset import LabeledImage, fingerprint
from eurosat_service.domain.errors import DatasetError, EurosatError, ImageTooLarge, Interrupted, InvalidImage
from eurosat_service.domain.model_card import EUROSAT_NORMALIZATION, ModelCard, Normalization, TrainingConfig
from eurosat_service.domain.ports import DatasetSource, TrainedModel

log = logging.getLogger(__name__)

INPUT_SIZE = 64
PRETRAINABLE = {"resnet18", "resnet18-nopool"}


class TrainingInterrupted(Interrupted):
    pass


class TorchTrainer:
    def __init__(
        self,
        source: DatasetSource,
        checkpoint_dir: Path | None = None,
        resume: bool = False,
        normalization: Normalization = EUROSAT_NORMALIZATION,
        show_progress: bool = True,
    ) -> None:
        self.source = source
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.resume = resume
        self.normalization = normalization
        self.show_progress = show_progress

    # -- data -----------------------------------------------------------------------------------
    def load_pixels(self, images: Sequence[LabeledImage]) -> torch.Tensor:
        """Decode every image once into one uint8 tensor (Pillow decodes outside the GIL); a file
        that cannot be read or decoded stops it with a ``DatasetError`` naming that file."""
        def decode(image: LabeledImage) -> torch.Tensor:
            try:
                return decode_rgb(self.source.read(image), INPUT_SIZE)
            except (InvalidImage, ImageTooLarge) as exc:
                raise DatasetError(f"{image.path} in {self.source}: {exc}; remove or replace that file") from None
            except OSError as exc:
                raise DatasetError(f"cannot read {image.path} in {self.source}: {exc.strerror or exc}") from None

        pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
        try:
            tensors = list(tqdm(pool.map(decode, images), total=len(images), desc="decode",
                                unit="img", disable=not self.show_progress, leave=False))
        finally:
            pool.shutdown(cancel_futures=True)  # after a bad file or Ctrl-C, decode no more
        return torch.stack(tensors) if tensors else torch.empty(0, 3, INPUT_SIZE, INPUT_SIZE, dtype=torch.uint8)

    # -- training -------------------------------------------------------------------------------
    def train(
        self,
        train: Sequence[LabeledImage],
        val: Sequence[LabeledImage],
        class_names: Sequence[str],
        config: TrainingConfig,
        teachers: Sequence[TrainedModel] = (),
    ) -> TrainedModel:
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        index = {name: i for i, name in enumerate(class_names)}
        x_train, y_train = self.load_pixels(train), torch.tensor([index[i.label] for i in train])
        x_val, y_val = self.load_pixels(val), torch.tensor([index[i.label] for i in val])

        network = self._build(config, len(class_names))
        optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        steps_per_epoch = math.ceil(len(train) / config.batch_size)
        total, warmup = config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch

        def lr_factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
        generator = torch.Generator().manual_seed(config.seed)
        state = {"epoch": 0, "history": [], "best": None, "best_acc": -1.0, "seconds": 0.0, "soft_targets": None}
        data_id = fingerprint(train) + fingerprint(val)
        if self.resume:
            self._restore(network, optimizer, scheduler, generator, state, config, data_id)
        if teachers:
            if state["epoch"] == 0:
                network.load_state_dict(teachers[0].network.state_dict())
            if state["soft_targets"] is None:  # kept in the checkpoints: computed once per run
                started = time.monotonic()
                state["soft_targets"] = self.ensemble_probabilities([t.network for t in teachers], x_train)
                state["seconds"] += time.monotonic() - started  # part of this run's training time

        for epoch in range(state["epoch"], config.epochs):
            started = time.monotonic()
            try:
                train_loss, train_acc = self._epoch(network, optimizer, scheduler, generator,
                                                    x_train, y_train, config, epoch, state["soft_targets"])
            except KeyboardInterrupt:
                if epoch and self.checkpoint_dir:
                    kept = (f"the checkpoint of epoch {epoch} is kept in {self.checkpoint_dir}: "
                            "run again with --resume to continue")
                elif self.checkpoint_dir:
                    kept = "no epoch of this run had finished, so it left no checkpoint: run again to start over"
                else:
                    kept = "no checkpoints are kept without a checkpoint folder: run again to start over"
                raise TrainingInterrupted(f"interrupted during epoch {epoch + 1}; {kept}") from None
            val_loss, val_acc = self._score(network, x_val, y_val)
            state["seconds"] += time.monotonic() - started
            record = {"epoch": epoch + 1, "train_loss": train_loss, "train_accuracy": train_acc,
                      "val_loss": val_loss, "val_accuracy": val_acc, "lr": optimizer.param_groups[0]["lr"],
                      "seconds": state["seconds"]}
            state["history"].append(record)
            log.info("epoch %d/%d %s", epoch + 1, config.epochs,
                     " ".join(f"{k}={v:.4f}" for k, v in record.items() if k != "epoch"))
            if val_acc >= state["best_acc"]:
                state["best_acc"] = val_acc
                state["best"] = {k: v.detach().clone() for k, v in network.state_dict().items()}
            state["epoch"] = epoch + 1
            self._checkpoint(network, optimizer, scheduler, generator, state, config, data_id)

        if state["best"] is not None:
            network.load_state_dict(state["best"])
        network.eval()
        return TrainedModel(network, config.architecture, tuple(class_names), state["history"], state["seconds"])

    def _build(self, config: TrainingConfig, num_classes: int) -> ResNet:
        network = build_resnet(config.architecture, num_classes)
        if config.pretrained:
            network.load_state_dict(self._imagenet_weights(config.architecture), strict=False)
        return network

    @staticmethod
    def _imagenet_weights(architecture: str) -> dict[str, torch.Tensor]:
        if architecture not in PRETRAINABLE:
            raise EurosatError(f"--pretrained needs one of {sorted(PRETRAINABLE)}, not {architecture}")
        try:
            from torchvision.models import ResNet18_Weights  # training-only dependency

            weights = ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=True)
        except Exception as exc:
            raise EurosatError(f"could not load torchvision's ImageNet weights: {exc}") from None
        return {k: v for k, v in weights.items() if not k.startswith("fc.")}

    def _epoch(self, network, optimizer, scheduler, generator, x, y, config, epoch, soft=None) -> tuple[float, float]:
        network.train()
        order = torch.randperm(len(x), generator=generator)
        batches = [order[i : i + config.batch_size] for i in range(0, len(x), config.batch_size)]
        total_loss, correct, seen = 0.0, 0, 0
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   disable=not self.show_progress, dynamic_ncols=True)
        for idx in bar:
            inputs = normalize(augment(x[idx], generator), self.normalization)
            logits = network(inputs)
            loss = F.cross_entropy(logits, y[idx], label_smoothing=config.label_smoothing)
            if soft is not None:
                # The teacher's targets are averaged over all eight flips/rotations, so they hold
                # for whichever of them ``augment`` drew (shifts and colour change them a little).
                w = config.distill_weight
                loss = (1 - w) * loss + w * F.cross_entropy(logits, soft[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            seen += len(idx)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
        return total_loss / seen, correct / seen

    @torch.inference_mode()
    def _logits(self, network: torch.nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        network.eval()
        outs = [network(normalize(x[i : i + batch_size], self.normalization)) for i in range(0, len(x), batch_size)]
        return torch.cat(outs) if outs else torch.empty(0, 0)

    @torch.no_grad()  # not inference_mode: a teacher's result is a loss target, which autograd keeps
    def view_probabilities(self, network: torch.nn.Module, x: torch.Tensor, views: int = 1, batch_size: int = 256,
                           desc: str = "scoring") -> torch.Tensor:
        """Class probabilities of the uint8 images ``x``, each averaged over ``views`` of its
        flips/rotations (``domain/views``) exactly as serving with ``EUROSAT_VIEWS`` computes them."""
        network.eval()
        step = max(1, batch_size // views)  # images per forward pass of ``batch_size`` views
        outs = [
            average_views(torch.softmax(network(stack_views(normalize(x[i : i + step], self.normalization), views)),
                                        dim=1), views)
            for i in tqdm(range(0, len(x), step), desc=desc, unit="batch", disable=not self.show_progress,
                          dynamic_ncols=True, leave=False)
        ]
        return torch.cat(outs) if outs else torch.empty(0, 0)

    def dihedral_probabilities(self, network: torch.nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities averaged over each image's eight flips/rotations: a teacher's
        test-time-augmented answer, which a student then learns to give in one pass."""
        return self.view_probabilities(network, x, views=8, batch_size=batch_size, desc="teacher (8 views)")

    def ensemble_probabilities(self, networks: Sequence[torch.nn.Module], x: torch.Tensor) -> torch.Tensor:
        """The mean of several teachers' eight-view averages: an ensemble's answer, which usually
        beats each member's (their errors differ), for one student to learn."""
        return torch.stack([self.dihedral_probabilities(network, x) for network in networks]).mean(0)

    def _score(self, network, x, y) -> tuple[float, float]:
        if not len(x):
            return float("nan"), float("nan")
        logits = self._logits(network, x)
        return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()

    # -- checkpoints ----------------------------------------------------------------------------
    def _checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None

    def _checkpoint(self, network, optimizer, scheduler, generator, state, config, data_id) -> None:
        path = self._checkpoint_path()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "network": network.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(), "epoch": state["epoch"], "best": state["best"],
            "best_acc": state["best_acc"], "seconds": state["seconds"],
            "history": [dict(h) for h in state["history"]],
            "config": config.model_dump_json(), "data_id": data_id, "soft_targets": state["soft_targets"],
        }
        try:
            save_whole(payload, path)
        except (OSError, RuntimeError) as exc:
            if path.is_file():
                kept = (f"the checkpoint of epoch {state['epoch'] - 1} is kept in {path}: "
                        "free some space and run again with --resume to continue from it")
            else:
                kept = "no earlier checkpoint is kept: free some space and run again to start over"
            raise EurosatError(f"writing the checkpoint of epoch {state['epoch']} to {partial_file(path)} failed: "
                               f"{_write_failure(exc)}; {kept}") from None

    def _restore(self, network, optimizer, scheduler, generator, state, config, data_id) -> None:
        path = self._checkpoint_path()
        if path is None or not path.exists():
            log.info("no checkpoint to resume from; starting fresh")
            return
        payload, saved = self._load_checkpoint(path)
        # Threads may change freely; epochs too (the cosine schedule is recomputed over the new
        # total, so a run can be shortened or extended); anything else would mix two experiments.
        if saved.model_copy(update={"threads": config.threads, "epochs": config.epochs}) != config \
                or payload["data_id"] != data_id:
            raise EurosatError(f"checkpoint {path} was made with other settings or data; "
                               "use the same flags, or remove it to start over")
        if config.epochs < payload["epoch"]:
            raise EurosatError(f"checkpoint {path} already has {payload['epoch']} epochs; "
                               f"--epochs {config.epochs} cannot shorten it below that")
        if saved.epochs != config.epochs:
            log.warning("resuming a %d-epoch run as a %d-epoch run", saved.epochs, config.epochs)
        try:
            network.load_state_dict(payload["network"])
            optimizer.load_state_dict(payload["optimizer"])
            scheduler.load_state_dict(payload["scheduler"])
            generator.set_state(payload["generator"])
            torch.set_rng_state(payload["torch_rng"])
            state.update(epoch=payload["epoch"], best=payload["best"], best_acc=payload["best_acc"],
                         seconds=payload["seconds"], history=list(payload["history"]),
                         soft_targets=payload.get("soft_targets"))
        except Exception as exc:  # loadable but not whole: missing or mismatched parts
            raise _damaged_checkpoint(path, exc) from None
        log.info("resumed from %s after epoch %d", path, state["epoch"])

    @staticmethod
    def _load_checkpoint(path: Path) -> tuple[dict, TrainingConfig]:
        """The checkpoint's payload and its run's config; a file that is not one of our checkpoints
        (junk, truncated, a model.pt, a folder) is one error saying how to start over, not a traceback."""
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            saved = TrainingConfig.model_validate_json(payload["config"])
            required = ("data_id", "epoch", "best", "best_acc", "seconds", "history")
            if missing := [k for k in required if k not in payload]:
                raise KeyError(", ".join(missing))
        except Exception as exc:  # torch raises anything from UnpicklingError to KeyError on junk
            raise _damaged_checkpoint(path, exc) from None
        return payload, saved

    # -- scoring, saving, loading ---------------------------------------------------------------
    def predict_probabilities(
        self, model: TrainedModel, images: Sequence[LabeledImage], views: int = 1
    ) -> list[list[float]]:
        return self.view_probabilities(model.network, self.load_pixels(images), views).tolist()

    def save(self, model: TrainedModel, card: ModelCard, path: Path) -> ModelCard:
        try:
            return save_model(model.network, card, path)
        except (OSError, RuntimeError) as exc:  # save_model removed its partial file
            checkpoint = self._checkpoint_path()
            if checkpoint is not None and checkpoint.is_file():
                kept = (f"the trained model is kept in the checkpoint {checkpoint}: free some space and run "
                        "again with --resume to publish it without training again")
            else:
                kept = "no checkpoint was kept: free some space and run again"
            raise EurosatError(f"writing {path} failed: {_write_failure(exc)}; {kept}") from None

    def load(self, path: Path) -> TrainedModel:
        network, card = load_model(path)
        self.normalization = card.normalization
        return TrainedModel(network, card.architecture, card.class_names, [], card.training_seconds or 0.0, card)


def _write_failure(exc: OSError | RuntimeError) -> str:
    """Why a write failed. torch reports a full disk only as ``RuntimeError: ... unexpected pos``,
    with no errno, so any of its write errors is taken for one."""
    if isinstance(exc, OSError) and exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return exc.strerror or str(exc)
    return f"the disk or folder is full ({_one_line(exc)})"


def _damaged_checkpoint(path: Path, exc: Exception) -> EurosatError:
    # torch's first sentence says what failed; the rest suggests unsafe loading, which is no fix here
    detail = _one_line(exc).split(". ")[0]
    return EurosatError(f"checkpoint {path} is damaged or not a training checkpoint "
                        f"({type(exc).__name__}: {detail}); remove it, or pass another "
                        "--checkpoint-dir, to start over")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
