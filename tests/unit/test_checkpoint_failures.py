"""A damaged checkpoint, or a disk that fills while one is written, is one error line saying what
was kept and how to go on, never a traceback or a stray ``.part`` file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from eurosat_service.adapters.eurosat_files import EuroSATFolder
from eurosat_service.adapters.resnet import build_resnet
from eurosat_service.adapters.torch_trainer import TorchTrainer
from eurosat_service.domain.errors import EurosatError
from eurosat_service.domain.model_card import EUROSAT_NORMALIZATION, ModelCard, TrainingConfig

FULL_DISK = "[enforce fail at inline_container.cc:672] . unexpected pos 3392 vs 3286"


def run(data: Path, ckpt: Path, resume: bool = False, epochs: int = 1):
    source = EuroSATFolder(data)
    images = source.list_images()
    names = sorted({i.label for i in images})
    trainer = TorchTrainer(source, checkpoint_dir=ckpt, resume=resume, show_progress=False)
    config = TrainingConfig(architecture="resnet18-nopool-w32", epochs=epochs, batch_size=16, threads=1)
    return trainer, trainer.train(images, images[:10], names, config)


def junk(path: Path) -> None:
    path.write_text("not a checkpoint at all\n" * 20)


def truncated(path: Path) -> None:
    torch.save({"config": "{}", "network": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:200])


def a_model_file(path: Path) -> None:  # what a model.pt copied over last.pt holds
    torch.save({"format": 1, "card": "{}", "state_dict": build_resnet("resnet18-nopool-w32", 10).state_dict()}, path)


def a_folder(path: Path) -> None:
    path.mkdir()


@pytest.mark.parametrize("damage", [junk, truncated, a_model_file, a_folder])
def test_a_damaged_checkpoint_says_to_remove_it(damage, make_dataset, tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    damage(ckpt / "last.pt")
    with pytest.raises(EurosatError) as refused:
        run(make_dataset(1), ckpt, resume=True)
    message = str(refused.value)
    assert message.startswith(f"checkpoint {ckpt / 'last.pt'} is damaged or not a training checkpoint (")
    assert message.endswith("; remove it, or pass another --checkpoint-dir, to start over")
    assert "\n" not in message


def failing_save(fail_on: int, written: list[Path]):
    real_save, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == fail_on:
            Path(f).write_bytes(b"x" * 100)  # the partial file a full disk leaves
            written.append(Path(f))
            raise RuntimeError(FULL_DISK)
        return real_save(obj, f, *args, **kwargs)

    return save


def test_a_full_disk_keeps_the_previous_checkpoint_and_removes_the_part_file(make_dataset, tmp_path, monkeypatch):
    ckpt, written = tmp_path / "ckpt", []
    monkeypatch.setattr(torch, "save", failing_save(2, written))
    with pytest.raises(EurosatError) as refused:
        run(make_dataset(1), ckpt, epochs=2)
    message = str(refused.value)
    assert message.startswith(f"writing the checkpoint of epoch 2 to {ckpt / 'last.pt.part'} failed: "
                              "the disk or folder is full (")
    assert message.endswith(f"the checkpoint of epoch 1 is kept in {ckpt / 'last.pt'}: free some space and run "
                            "again with --resume to continue from it")
    assert written and sorted(p.name for p in ckpt.iterdir()) == ["last.pt"]
    assert torch.load(ckpt / "last.pt", weights_only=True)["epoch"] == 1


def test_a_full_disk_at_the_first_checkpoint_says_none_is_kept(make_dataset, tmp_path, monkeypatch):
    ckpt, written = tmp_path / "ckpt", []
    monkeypatch.setattr(torch, "save", failing_save(1, written))
    with pytest.raises(EurosatError, match="no earlier checkpoint is kept: free some space and run again"):
        run(make_dataset(1), ckpt)
    assert written and list(ckpt.iterdir()) == []


def test_a_full_disk_saving_the_model_keeps_the_checkpoint(make_dataset, tmp_path, monkeypatch):
    ckpt, written = tmp_path / "ckpt", []
    trainer, model = run(make_dataset(1), ckpt)
    monkeypatch.setattr(torch, "save", failing_save(1, written))
    out = tmp_path / "work" / "v1" / "model.pt"
    with pytest.raises(EurosatError) as refused:
        trainer.save(model, _card(model), out)
    message = str(refused.value)
    assert message.startswith(f"writing {out} failed: the disk or folder is full (")
    assert f"the trained model is kept in the checkpoint {ckpt / 'last.pt'}" in message
    assert written and list(out.parent.iterdir()) == []


def _card(model) -> ModelCard:
    return ModelCard(name="m", version="v1", architecture=model.architecture, class_names=model.class_names,
                     input_size=64, normalization=EUROSAT_NORMALIZATION, weights_sha256="")
