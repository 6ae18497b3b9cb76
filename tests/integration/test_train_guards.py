"""The train command refuses, in one line and before any image is decoded, flags no trainer can use
and a run that would overwrite an earlier run's checkpoint; a diverged run publishes nothing."""

from __future__ import annotations

import pytest

from eurosat_service.adapters.torch_trainer import TorchTrainer
from eurosat_service.entrypoints import train
from tests.integration.test_entrypoints import TRAIN_FLAGS, run_main, scratch


@pytest.mark.parametrize("flags, message", [
    (["--lr", "inf"], "--lr inf: input should be a finite number"),
    (["--lr", "nan"], "--lr nan: input should be a finite number"),
    (["--weight-decay", "inf"], "--weight-decay inf: input should be a finite number"),
    (["--label-smoothing", "nan"], "--label-smoothing nan: input should be a finite number"),
    (["--distill-weight", "nan"], "--distill-weight nan: input should be a finite number"),
    (["--seed", str(2**64)], f"--seed {2**64}: input should be less than or equal to {2**64 - 1}"),
    (["--seed", "-1"], "--seed -1: input should be greater than or equal to 0"),
    (["--threads", "100000"], "--threads 100000: input should be less than or equal to 256"),
])
def test_an_unusable_training_flag_is_one_line_naming_it(flags, message, make_dataset, tmp_path, no_decoding,
                                                          capsys):
    args = ["--data-dir", str(make_dataset(3)), "--artifact-uri", str(tmp_path / "store"), *scratch(tmp_path),
            *TRAIN_FLAGS, *flags]
    code, out, err = run_main(train.main, args, capsys)
    assert code == 2 and out == "" and err == f"error: {message}\n"
    assert not (tmp_path / "store").exists() and not (tmp_path / "work").exists()


def test_the_checkpoint_file_is_the_one_the_trainer_writes(tmp_path):
    assert TorchTrainer(None, checkpoint_dir=tmp_path)._checkpoint_path() == tmp_path / train.CHECKPOINT_FILE


def test_an_earlier_runs_checkpoint_is_not_overwritten_without_resume(make_dataset, tmp_path, no_decoding, capsys):
    checkpoint = tmp_path / "ckpt" / train.CHECKPOINT_FILE
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"an earlier run's epochs")
    args = ["--data-dir", str(make_dataset(3)), "--artifact-uri", str(tmp_path / "store"), *scratch(tmp_path),
            *TRAIN_FLAGS]
    code, out, err = run_main(train.main, args, capsys)
    assert code == 2 and out == ""
    assert err == (f"error: {checkpoint} holds an earlier run's checkpoint: pass --resume to continue it, "
                   "or remove it or choose another --checkpoint-dir to start over\n")
    assert checkpoint.read_bytes() == b"an earlier run's epochs" and not (tmp_path / "store").exists()


def test_a_diverged_run_publishes_nothing(make_dataset, tmp_path, capsys):
    args = ["--data-dir", str(make_dataset(3)), "--artifact-uri", str(tmp_path / "store"), *scratch(tmp_path),
            *TRAIN_FLAGS, "--epochs", "1", "--lr", "1e30"]
    code, out, err = run_main(train.main, args, capsys)
    checkpoint = tmp_path / "ckpt" / train.CHECKPOINT_FILE
    assert code == 2 and out == ""
    assert err.startswith("error: training diverged at epoch 1 (train_loss=nan"), err
    assert err.endswith(f"nothing was published: try a lower --lr than 1e+30, once {checkpoint} "
                          "(the diverged epochs) is removed\n"), err
    assert err.count("\n") == 1 and checkpoint.exists()  # the checkpoint handling is unchanged
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())
